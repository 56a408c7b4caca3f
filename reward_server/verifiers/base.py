"""Pieces every verifier shares: the common options and the default extraction.

Every numeric option is a finite number, and one that states bounds (`ge`, `gt`, `le`,
`lt` of `option`) lies inside them: `registry.build_options` checks both for every
verifier, so a request's NaN, Infinity or out-of-range knob is refused naming the option
instead of giving a silent nonsense score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reward_server.extraction import extract_answer
from reward_server.types import ItemContext


def option(
    default: object,
    help: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> object:
    """A dataclass field with a default, the `help` text shown by `/answer-types`, and the
    bounds a numeric value must respect (checked by `registry.build_options`)."""
    bounds = {
        name: value
        for name, value in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt))
        if value is not None
    }
    return field(default=default, metadata={"help": help, "bounds": bounds})


@dataclass(frozen=True)
class BaseOptions:
    strict_tags: bool = option(  # type: ignore[assignment]
        True,
        "Only the last <answer>...</answer> block counts (the recipe). False falls back to "
        "\\boxed{}, an 'Answer: X' phrase, then the last line.",
    )
    format_weight: float | None = option(  # type: ignore[assignment]
        None,
        "Weight of format_reward added to the reward; None uses the server setting "
        "REWARD_FORMAT_WEIGHT.",
        ge=-10.0,
        le=10.0,
    )


def extract_tagged(response: str, options: BaseOptions, context: ItemContext) -> str | None:
    """The default `extract`: the answer block (or lenient fallback), or None."""
    del context
    answer = extract_answer(response, strict_tags=options.strict_tags)
    return answer if answer else None
