"""Expected failures of the trainer client, each with what to do about it.

`TrainerClientError(message, hint)` is what the library raises for a failure the user can
fix (a missing file, a model that cannot be loaded, an empty data set, a config value
that cannot work). The CLI prints `message` and `hint` on one or two lines and exits
non-zero; `--debug` shows the traceback instead. Bugs stay ordinary exceptions.
"""

from __future__ import annotations


class TrainerClientError(Exception):
    """A failure the user can fix; `hint` says how (or is empty)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ModelLoadError(TrainerClientError):
    """A checkpoint that cannot be found or loaded."""


class DataError(TrainerClientError, ValueError):
    """Data files that are missing, unreadable or hold no usable row."""
