"""Known answers: the cases that say what a correct deployment scores.

The same rows drive the in-process unit tests (`tests/reward_server/test_known_answers.py`)
and the remote suite (`reward-server validate --url URL`, `pytest --reward-url URL`).
They are JSON lines, one case a line, read from every `*.jsonl` file of

- this package's directory (shipped with the package, so an installed server or a Docker
  image can validate itself), and
- `tests/data/known_answers/` of a source checkout, when there is one.

A row:

    answer_type   str      a registry name (`reward-server answer-types`)
    response      str      the whole completion, sent as the item's `response`
    answer        ref      the reference, sent as the item's `answer`
    expected      float    the `acc_reward` a correct verifier gives
    status        str      the result status it gives: "ok" (default) or another
    tolerance     float    agreement is |acc_reward - expected| <= tolerance;
                           default 1e-6, 0 for exact
    choices, options, problem_type, prompt_type     as in a request item (optional)
    comment       str      why the case is there     } at least one of the two
    source        str      where the case comes from } is not empty
    xfail         str      (optional) why this version of the code disagrees with the row:
                           the row is still sent and reported, but it does not count
                           against the default threshold

`xfail` is the one field added to the rows' shared format; a row without it is one the
code of this version must get right. The unit tests hold both promises: every row
without `xfail` agrees, and every row with it disagrees (so a fix removes the mark).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reward_server.types import ScoreItem, canonical_json

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parents[1] / "tests" / "data" / "known_answers"
DEFAULT_TOLERANCE = 1e-6

_REQUIRED = {"answer_type": str, "response": str, "expected": (int, float)}
_OPTIONAL = {
    "status": str,
    "tolerance": (int, float),
    "choices": list,
    "options": dict,
    "problem_type": str,
    "prompt_type": str,
    "comment": str,
    "source": str,
    "xfail": str,
}


class RowError(ValueError):
    """A row that cannot be read; the message names its file and line."""


@dataclass(frozen=True)
class KnownAnswer:
    """One known-answer case; `origin` says where it is written: `file.jsonl:line` for the
    package's files and a file given by name, `tests/data/known_answers/file.jsonl:line`
    for the checkout's. It is also the item's `id` (unique within one load)."""

    answer_type: str
    response: str
    answer: Any
    expected: float
    origin: str
    status: str = "ok"
    tolerance: float = DEFAULT_TOLERANCE
    choices: tuple[str, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    problem_type: str | None = None
    prompt_type: str | None = None
    comment: str = ""
    source: str = ""
    xfail: str | None = None

    @property
    def note(self) -> str:
        """The comment, else the source: what a reader sees next to a disagreement."""
        return self.comment or self.source

    def request_item(self) -> dict[str, Any]:
        """The row as an item of `POST /score` (also the gRPC client's item)."""
        item: dict[str, Any] = {
            "id": self.origin,
            "answer_type": self.answer_type,
            "response": self.response,
            "answer": self.answer,
        }
        if self.choices is not None:
            item["choices"] = list(self.choices)
        if self.options:
            item["options"] = dict(self.options)
        if self.problem_type is not None:
            item["problem_type"] = self.problem_type
        if self.prompt_type is not None:
            item["prompt_type"] = self.prompt_type
        return item

    def score_item(self) -> ScoreItem:
        """The row as the engine's item, for in-process scoring."""
        return ScoreItem(
            answer_type=self.answer_type,
            response=self.response,
            answer=self.answer,
            id=self.origin,
            problem_type=self.problem_type,
            prompt_type=self.prompt_type,
            choices=self.choices,
            options=dict(self.options),
        )

    def disagreement(self, acc_reward: float | None, status: str) -> str | None:
        """None when a result agrees with the row, else what differs, in one line."""
        if status != self.status:
            got = "no result" if acc_reward is None else f"{acc_reward:.6g}"
            return f"status {status!r} (acc_reward {got}), expected status {self.status!r}"
        if acc_reward is None or not math.isfinite(acc_reward):
            return f"acc_reward {acc_reward!r}, expected {self.expected:.6g}"
        if abs(acc_reward - self.expected) > self.tolerance:
            bound = "exactly" if self.tolerance == 0 else f"within {self.tolerance:g} of"
            return f"acc_reward {acc_reward:.6g}, expected {bound} {self.expected:.6g}"
        return None

    def key(self) -> str:
        """What makes two rows the same case (the expectation aside)."""
        return canonical_json(
            [self.answer_type, self.response, self.answer, self.choices, self.options,
             self.problem_type, self.prompt_type]
        )


def default_files() -> list[Path]:
    """Every rows file of the package, then of the checkout's tests (when present)."""
    files = sorted(PACKAGE_DIR.glob("*.jsonl"))
    if CHECKOUT_DIR.is_dir():
        files += sorted(CHECKOUT_DIR.glob("*.jsonl"))
    return files


def parse_row(raw: Any, origin: str) -> KnownAnswer:
    """One decoded JSON line as a `KnownAnswer`; `RowError` names what is wrong."""
    if not isinstance(raw, dict):
        raise RowError(f"{origin}: a row is a JSON object, got {type(raw).__name__}")
    for name, kind in _REQUIRED.items():
        if name not in raw:
            raise RowError(f"{origin}: missing field {name!r}")
        if not isinstance(raw[name], kind) or isinstance(raw[name], bool):
            raise RowError(f"{origin}: field {name!r} has the wrong type")
    if "answer" not in raw:
        raise RowError(f"{origin}: missing field 'answer'")
    for name, value in raw.items():
        if name in _REQUIRED or name == "answer":
            continue
        if name not in _OPTIONAL:
            known = ", ".join(sorted([*_REQUIRED, "answer", *_OPTIONAL]))
            raise RowError(f"{origin}: unknown field {name!r}; known: {known}")
        if not isinstance(value, _OPTIONAL[name]) or isinstance(value, bool):
            raise RowError(f"{origin}: field {name!r} has the wrong type")
    if not (raw.get("comment", "").strip() or raw.get("source", "").strip()):
        raise RowError(f"{origin}: a row needs a comment or a source")
    tolerance = float(raw.get("tolerance", DEFAULT_TOLERANCE))
    if tolerance < 0:
        raise RowError(f"{origin}: tolerance must be >= 0")
    choices = raw.get("choices")
    return KnownAnswer(
        answer_type=raw["answer_type"],
        response=raw["response"],
        answer=raw["answer"],
        expected=float(raw["expected"]),
        origin=origin,
        status=raw.get("status", "ok"),
        tolerance=tolerance,
        choices=None if choices is None else tuple(choices),
        options=dict(raw.get("options", {})),
        problem_type=raw.get("problem_type"),
        prompt_type=raw.get("prompt_type"),
        comment=raw.get("comment", ""),
        source=raw.get("source", ""),
        xfail=raw.get("xfail"),
    )


def _label(path: Path) -> str:
    if path.parent.resolve() == CHECKOUT_DIR.resolve():
        return f"tests/data/known_answers/{path.name}"
    return path.name


def read_file(path: Path, label: str | None = None) -> list[KnownAnswer]:
    """The rows of one file; `label` (default: see `KnownAnswer`) starts each origin."""
    label = label or _label(path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        origin = f"{label}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RowError(f"{origin}: not JSON: {exc}") from None
        rows.append(parse_row(raw, origin))
    return rows


def load(
    answer_types: Iterable[str] | None = None, files: Sequence[Path] | None = None
) -> list[KnownAnswer]:
    """The known answers of `files` (default: `default_files()`), in file order.

    `answer_types` keeps only those types. A case found twice (two sources, or two
    branches adding the same row) is kept twice with the same expectation; with different
    expectations it is a `RowError` naming both places.
    """
    wanted = None if answer_types is None else set(answer_types)
    first_seen: dict[str, KnownAnswer] = {}
    labels: dict[str, Path] = {}
    rows = []
    for path in default_files() if files is None else files:
        label = _label(path)
        if labels.setdefault(label, path.resolve()) != path.resolve():
            label = str(path)  # two files of one name: the full path tells them apart
        for row in read_file(path, label):
            if wanted is not None and row.answer_type not in wanted:
                continue
            first = first_seen.setdefault(row.key(), row)
            if (first.expected, first.status) != (row.expected, row.status):
                raise RowError(
                    f"{row.origin}: the case of {first.origin} with another expectation "
                    f"({row.expected:g}/{row.status} vs {first.expected:g}/{first.status})"
                )
            rows.append(row)
    return rows
