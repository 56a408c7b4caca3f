"""Typed values that cross the library's boundaries.

`ScoreItem` is one request item, `Verdict` what a verifier's `compare` returns, and
`ScoreResult` the result the engine hands back: the same shape for every item, whatever
happened to it (see `Status`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

# ok: verified (reward = score). no_answer: no answer block (reward 0, a wrong answer).
# rejected: the RESPONSE made verification fail (a verifier's guard refused it, or it
# overran its limit twice while computing): reward 0, scored as a wrong answer.
# timeout / error: a fault of the service (overload, a dead worker, a bad reference):
# reward 0, left out of training by clients. invalid: the item itself is malformed (only
# when the request asks for per-item errors, `invalid: "item"`), no reward signal either.
Status = Literal["ok", "no_answer", "rejected", "timeout", "error", "invalid"]

# A reference answer as it arrives in a data row: one string or number, or a list of
# acceptable ones (OCR gives several golds, a box is a list of four numbers).
Reference = str | int | float | list[Any]


@dataclass(frozen=True)
class ItemContext:
    """What a verifier may know about the item besides the response and the reference."""

    problem_type: str | None = None
    prompt_type: str | None = None
    choices: tuple[str, ...] | None = None

    @property
    def chain_of_thought(self) -> bool:
        """The recipe: `prompt_type == "normal"` is answer-only, anything else is CoT."""
        return self.prompt_type is not None and self.prompt_type != "normal"


@dataclass(frozen=True)
class ScoreItem:
    answer_type: str
    response: str
    answer: Reference
    id: str | None = None
    problem_type: str | None = None
    prompt_type: str | None = None
    choices: tuple[str, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def context(self) -> ItemContext:
        return ItemContext(self.problem_type, self.prompt_type, self.choices)


@dataclass(frozen=True)
class Verdict:
    """A verifier's judgement of one extracted answer against the reference.

    `score` is the accuracy reward in [0, 1]. `components` names the terms it was made of
    (e.g. `ssim`, `tag_jaccard`). A response the model got wrong is `status="ok"` with a
    low score; one that the verifier refuses to verify (over its size, nesting or cost
    guards) is `status="rejected"`; `error` is for a fault of ours or of the reference.
    """

    score: float
    components: dict[str, float] = field(default_factory=dict)
    status: Status = "ok"
    message: str | None = None


@dataclass(frozen=True)
class ScoreResult:
    """One item's result. Its text fields echo client and model text (`id`, `extracted`,
    `error`, component names): they are made valid Unicode here (`valid_unicode`), so every
    transport can encode them, whatever the request held."""

    id: str | None
    reward: float
    acc_reward: float
    format_reward: float
    components: dict[str, float]
    extracted: str | None
    status: Status
    error: str | None = None
    cached: bool = False

    def __post_init__(self) -> None:
        for name in ("id", "extracted", "error"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, valid_unicode(value))
        if any(valid_unicode(key) is not key for key in self.components):
            object.__setattr__(
                self, "components", {valid_unicode(k): v for k, v in self.components.items()}
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reward": self.reward,
            "acc_reward": self.acc_reward,
            "format_reward": self.format_reward,
            "components": dict(self.components),
            "extracted": self.extracted,
            "status": self.status,
            "error": self.error,
            "cached": self.cached,
        }


def valid_unicode(text: str) -> str:
    """`text` with every lone surrogate (`"\\ud800"`, which JSON escapes can carry but UTF-8
    cannot encode) replaced by U+FFFD; the same object when there is none.

    Linear time: the common case is one successful encode.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Pairs split over two code points are joined back; lone halves become U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


# One encoder for every call: `json.dumps` with arguments builds a new one each time, which
# costs more than encoding the small values of a cache key (several per item).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """A stable text form of a JSON-like value, used in cache keys."""
    return _CANONICAL.encode(value)
