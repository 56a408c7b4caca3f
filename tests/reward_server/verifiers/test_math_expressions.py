"""`math-expressions`: extraction, bounds on hostile input, timeouts, options. The
equivalences that must and must not hold and the labelled corpus are rows in
`reward_server/known_answers/math_expressions.jsonl` and `math_equivalence.jsonl`."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from reward_server import registry
from reward_server.engine import Engine
from reward_server.settings import Settings
from reward_server.types import ItemContext, ScoreItem
from reward_server.verifiers import math_expressions as math
from reward_server.verifiers import math_normalize as mn

DEFAULT = math.Options()
PLAIN = ItemContext()


def tag(answer: str) -> str:
    return f"<answer>{answer}</answer>"


@pytest.mark.parametrize(
    "response,expected",
    [
        (tag(r" $\dfrac{1}{2}$. "), r"\frac{1}{2}"),  # one spelling: the cache key
        (tag(r"\left( 3, \frac{\pi}{2} \right)"), r"(3, \frac{\pi}{2})"),
        (tag(r"The final answer is $28 \%$. I hope it is correct."), "28%"),
        (tag(r"10,\!000"), "10,000"),
        (tag(""), None),
        ("no tags at all", None),
    ],
)
def test_extract_returns_normalized_text(response: str, expected: str | None) -> None:
    assert math.extract(response, DEFAULT, PLAIN) == expected


def test_extract_bounds_work_on_hostile_text() -> None:
    # a megabyte of adjacent boxes: at most 16 are joined into the answer
    boxes = math.extract(tag(r"\boxed{1}" * 100_000), DEFAULT, PLAIN)
    assert boxes == ", ".join(["1"] * 16)
    # an answer longer than max_answer_chars comes back raw, for compare to refuse
    long = math.extract(tag("1+" * 5_000 + "1"), DEFAULT, PLAIN)
    assert long is not None and len(long) == 10_001


def test_plain_numbers_are_read_exactly() -> None:
    assert mn.plain_number(r"-\frac{3}{4}") == mn.PlainNumber(mn.Fraction(-3, 4), False, False)
    assert mn.plain_number("12.5%") == mn.PlainNumber(mn.Fraction(25, 2), True, True)
    assert mn.plain_number("2 pi") is None  # "pi" is not a unit
    assert mn.plain_number("3a") is None


def test_hostile_answers_are_refused_in_compare() -> None:
    long = math.compare("+".join(["x"] * 50_000), "1", DEFAULT, PLAIN)
    nested = math.compare("{" * 200 + "1" + "}" * 200, "1", DEFAULT, PLAIN)
    assert (long.status, nested.status) == ("rejected", "rejected")
    assert "max_answer_chars" in (long.message or "") and "max_nesting" in (nested.message or "")


def test_compare_works_off_the_main_thread() -> None:
    # signal.alarm is main-thread only; a thread pool caller still gets real verdicts
    with ThreadPoolExecutor(max_workers=1) as pool:
        same = pool.submit(math.compare, r"\pi/2", r"\frac{\pi}{2}", DEFAULT, PLAIN).result()
        different = pool.submit(math.compare, "2", r"2\pi", DEFAULT, PLAIN).result()
    assert (same.status, same.score, different.score) == ("ok", 1.0, 0.0)


def test_power_tower_is_rejected_before_sympy() -> None:
    verdict = math.compare("9^{9^{9^{9}}}", "5", math.Options(sympy_timeout_s=1), PLAIN)
    assert verdict.status == "rejected" and "exponent" in (verdict.message or "")


def test_slow_sympy_times_out_inside_compare() -> None:
    # no guard catches it: Math-Verify's own alarm does (the engine then retries it)
    verdict = math.compare("(x+1)^{5000}", "5", math.Options(sympy_timeout_s=1), PLAIN)
    assert verdict.status == "timeout"


# -- through the engine: hostile input costs one item, not the server ------------------


@pytest.fixture(scope="module")
def math_engine() -> Iterator[Engine]:
    with Engine(Settings(workers=2, item_timeout_s=2.0, cache_size=100)) as engine:
        yield engine


def test_hostile_input_through_the_engine(math_engine: Engine) -> None:
    hostile = {
        "tower": tag("9^{9^{9^{9}}}"),
        "long": tag("+".join(["x"] * 50_000)),
        "nested": tag("{" * 5_000 + "1" + "}" * 5_000),
    }
    normal = [(tag(r"\frac{\pi}{2}"), r"\pi/2", 1.0), (tag("2"), r"2\pi", 0.0),
              (tag("1,000"), "1000", 1.0)]
    items = [ScoreItem("math-expressions", response, "5", id=name)
             for name, response in hostile.items()]
    items += [ScoreItem("math-expressions", response, gold, id=f"normal{i}")
              for i, (response, gold, _) in enumerate(normal)]
    results = {r.id: r for r in math_engine.score_sync(items)}
    for name in hostile:
        # the response's fault: scored as a wrong answer, not excluded as a fault
        assert results[name].status == "rejected", results[name]
        assert results[name].reward == 0.0
    for i, (_, _, expected) in enumerate(normal):
        assert results[f"normal{i}"].status == "ok"
        assert results[f"normal{i}"].reward == expected
    # and the pool still serves: a fresh batch after the kills is verified normally
    after = math_engine.score_sync([ScoreItem("math-expressions", tag("0.5"), "1/2")])
    assert (after[0].status, after[0].reward) == ("ok", 1.0)


def test_grpo_group_is_verified_once(math_engine: Engine) -> None:
    completions = [f"<think>try {i}</think><answer>\\frac{{1}}{{2}}</answer>" for i in range(16)]
    group = [ScoreItem("math-expressions", text, "0.5") for text in completions]
    results = math_engine.score_sync(group)
    assert all(r.reward == 1.0 for r in results)
    assert sum(not r.cached for r in results) == 1


@pytest.mark.parametrize(
    "raw,field",
    [({"sympy_timeout_s": 0}, "sympy_timeout_s"), ({"float_rounding": 99}, "float_rounding"),
     ({"max_nesting": 0}, "max_nesting")],
)
def test_bad_options_are_refused_with_the_reason(raw: dict[str, int], field: str) -> None:
    with pytest.raises(registry.OptionsError, match=field):
        registry.build_options("math-expressions", raw)
