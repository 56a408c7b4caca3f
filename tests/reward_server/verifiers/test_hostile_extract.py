"""`extract` runs in the server process on model text: it must stay linear-time.

Each hostile answer is about a million characters of a pattern that would make a
backtracking regex or a nested scan quadratic (minutes to hours at this size); a linear
reading takes well under a second. The bound is loose on purpose: it tells linear from
quadratic, it is not a speed claim (see bench/ for those).
"""

from __future__ import annotations

import time

import pytest

from reward_server import registry
from reward_server.types import ItemContext

MEGA = 1_000_000
BOUND_S = 20.0
CHOICES = ("a dog", "cat", "30 cm", "4", "red", "dark red")


def _fill(unit: str) -> str:
    return unit * (MEGA // len(unit))


HOSTILE = {
    "multiple-choice": [
        _fill("A "), _fill("(B) "), _fill("not "), _fill("It can't be B, so "), _fill("A or "),
        _fill("but A "), _fill("{\"answer\": "), _fill("{"), _fill("cat dog 4 30 "),
        _fill("the answer is "), _fill("no, "), _fill("dark red "),
    ],
    "number": [
        _fill("1 of them "), _fill("in total "), _fill("a pair of "), _fill("total of 3 "),
        _fill("one "), _fill("1, "), _fill("half a dozen "), _fill("-"),
    ],
    "math-expressions": [
        _fill("so "), _fill("1="), _fill("\\begin{pmatrix}"), _fill("1\n"), _fill("i+"),
        _fill("\\boxed{1} and "), _fill("0.\\overline{"), _fill("The answer is 1. "),
        _fill("$x$ so "), _fill("1+1=2\n"), _fill("\\boxed{1}$ x = $"),
    ],
    "bbox": [_fill("x1: 1 "), _fill("xmin="), _fill("[1, "), _fill("{\"x1\": ")],
}


@pytest.mark.parametrize(
    "answer_type,text",
    [(t, text) for t, texts in HOSTILE.items() for text in texts],
    ids=[f"{t}-{i}" for t, texts in HOSTILE.items() for i in range(len(texts))],
)
def test_extract_is_linear_on_a_megabyte(answer_type: str, text: str) -> None:
    module = registry.get(answer_type).load()
    options = registry.build_options(answer_type, {})
    context = ItemContext(choices=CHOICES if answer_type == "multiple-choice" else None)
    started = time.perf_counter()
    extracted = module.extract(f"<answer>{text}</answer>", options, context)
    elapsed = time.perf_counter() - started
    assert extracted is None or isinstance(extracted, str)
    assert elapsed < BOUND_S, f"{answer_type} extract took {elapsed:.1f}s on 1M characters"
