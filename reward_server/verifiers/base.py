"""Pieces every verifier shares: the common options and the default extraction."""

from __future__ import annotations

from dataclasses import dataclass, field

from reward_server.extraction import extract_answer
from reward_server.types import ItemContext


def option(default: object, help: str) -> object:
    """A dataclass field with a default and the `help` text shown by `/answer-types`."""
    return field(default=default, metadata={"help": help})


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
    )


def extract_tagged(response: str, options: BaseOptions, context: ItemContext) -> str | None:
    """The default `extract`: the answer block (or lenient fallback), or None."""
    del context
    answer = extract_answer(response, strict_tags=options.strict_tags)
    return answer if answer else None
