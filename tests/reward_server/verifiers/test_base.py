"""The helpers every verifier shares: golds, the best verdict over golds, cached renders."""

from __future__ import annotations

import numpy as np
import pytest

from reward_server.types import Verdict
from reward_server.verifiers.base import best_over_golds, cached_reference_render, golds_of


@pytest.mark.parametrize(
    "reference,expected",
    [("B", ["B"]), (3, [3]), (["a", "b"], ["a", "b"]), ([1, 2, 3, 4], [1, 2, 3, 4]), ([], [])],
)
def test_golds_of(reference: object, expected: list[object]) -> None:
    assert golds_of(reference) == expected  # type: ignore[arg-type]


def test_best_over_golds_keeps_the_first_of_the_best() -> None:
    verdicts = {"a": Verdict(0.2, {"n": 1}), "b": Verdict(0.9, {"n": 2}), "c": Verdict(0.9)}
    best = best_over_golds(["a", "b", "c"], verdicts.__getitem__)
    assert best is verdicts["b"]
    assert best_over_golds([], verdicts.__getitem__) is None


def test_best_over_golds_stops_at_a_bad_reference() -> None:
    seen: list[str] = []

    def score(gold: str) -> Verdict:
        seen.append(gold)
        return Verdict(0.0, status="error", message="bad") if gold == "bad" else Verdict(1.0)

    assert best_over_golds(["ok", "bad", "never"], score).status == "error"  # type: ignore[union-attr]
    assert seen == ["ok", "bad"]


def test_cached_reference_render_renders_once_and_freezes() -> None:
    calls: list[int] = []

    @cached_reference_render(maxsize=4, pixels=lambda image: image)
    def render(size: int) -> np.ndarray:
        calls.append(size)
        return np.zeros((size, size, 3), dtype=np.uint8)

    first, second = render(8), render(8)
    assert first is second and calls == [8]
    with pytest.raises(ValueError):
        first[0, 0, 0] = 1  # read-only: no caller can change the cached copy
