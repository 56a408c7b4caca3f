"""Pieces every verifier shares: the common options, the default extraction, reading a
reference as a list of golds, keeping the best verdict over golds, and caching the render
of a reference."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from reward_server.extraction import extract_answer
from reward_server.types import ItemContext, Reference, Verdict

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")
R = TypeVar("R")


def option(
    default: T,
    help: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> T:
    """A dataclass field with a default, the `help` text shown by `/answer-types`, and the
    bounds a numeric value must respect (checked by `registry.build_options`: every
    numeric option is finite and inside its bounds, or the request is refused naming it)."""
    bounds = {
        name: value
        for name, value in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt))
        if value is not None
    }
    return field(default=default, metadata={"help": help, "bounds": bounds})  # type: ignore[return-value]


@dataclass(frozen=True)
class BaseOptions:
    strict_tags: bool = option(
        True,
        "Only the last <answer>...</answer> block counts (the recipe). False falls back to "
        "\\boxed{}, an 'Answer: X' phrase, then the last line.",
    )
    format_weight: float | None = option(
        None,
        "Weight of format_reward added to the reward; None uses the server setting "
        "REWARD_FORMAT_WEIGHT.",
        ge=-10.0, le=10.0,
    )


def extract_tagged(response: str, options: BaseOptions, context: ItemContext) -> str | None:
    """The default `extract`: the answer block (or lenient fallback), or None."""
    del context
    answer = extract_answer(response, strict_tags=options.strict_tags)
    return answer if answer else None


def golds_of(reference: Reference) -> list[Any]:
    """A reference as the list of its acceptable answers (a list gives several)."""
    return list(reference) if isinstance(reference, list) else [reference]


def best_over_golds(golds: Iterable[T], score: Callable[[T], Verdict]) -> Verdict | None:
    """The highest-scoring verdict over the golds (the first of equals); a verdict that is
    not `ok` (a reference that cannot be used) is returned at once. None without golds."""
    best: Verdict | None = None
    for gold in golds:
        verdict = score(gold)
        if verdict.status != "ok":
            return verdict
        if best is None or verdict.score > best.score:
            best = verdict
    return best


def cached_reference_render(
    maxsize: int, pixels: Callable[[R], np.ndarray]
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorator: cache a reference's render per worker (a GRPO group scores 16 answers
    against one reference: render it once). `pixels` names the image array of a render,
    made read-only so that no caller can change the cached copy."""

    def decorate(render: Callable[..., R]) -> Callable[..., R]:
        @lru_cache(maxsize=maxsize)
        def cached(*args: Any) -> R:
            rendering = render(*args)
            pixels(rendering).flags.writeable = False
            return rendering

        return cached

    return decorate
