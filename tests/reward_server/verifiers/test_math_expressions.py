"""`math-expressions`: extraction, the equivalences that must and must not hold, the
labelled corpus, and hostile input through the engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from reward_server import registry
from reward_server.engine import Engine
from reward_server.settings import Settings
from reward_server.types import ItemContext, ScoreItem
from reward_server.verifiers import math_expressions as math
from reward_server.verifiers import math_normalize as mn

CORPUS = Path(__file__).resolve().parents[2] / "data" / "math_equivalence.jsonl"
DEFAULT = math.Options()
PLAIN = ItemContext()


def score(response: str, reference: Any, context: ItemContext = PLAIN, **options: Any) -> float:
    """The accuracy reward of a full completion, as the engine computes it (in process)."""
    opts = registry.build_options("math-expressions", options)
    extracted = math.extract(response, opts, context)
    if extracted is None:
        return 0.0
    verdict = math.compare(extracted, reference, opts, context)
    assert verdict.status == "ok", verdict.message
    return verdict.score


def tag(answer: str) -> str:
    return f"<answer>{answer}</answer>"


@pytest.mark.parametrize(
    "response,reference,expected",
    [
        # -- the recipe grader's measured defects, fixed --
        (tag("2"), r"2\pi", 0.0),  # bare LaTeX in the tag is LaTeX, not its first number
        (tag("3"), r"3\sqrt{3}", 0.0),
        (tag("2"), "y=2x+1", 0.0),
        (tag(r"\{2,1\}"), r"\{1,2\}", 1.0),  # sets ignore order
        (tag(r"\pi/2"), r"\frac{\pi}{2}", 1.0),
        # -- must hold --
        (tag("0.5"), "1/2", 1.0),  # fraction vs decimal
        (tag(r"\frac12"), "0.5", 1.0),  # malformed \frac
        (tag("1,000,000"), "1000000", 1.0),  # thousands separators
        (tag(r"1{,}000"), "1000", 1.0),
        (tag("0.5"), "50%", 1.0),  # percent as a fraction
        (tag("50"), r"50\%", 1.0),  # percent as the number
        (tag(r"90^\circ"), "90", 1.0),  # degrees stripped
        (tag(r"12\text{ cm}"), "12", 1.0),  # units stripped
        (tag(r"\text{odd}"), "odd", 1.0),
        (tag(r"\dfrac{3}{4}"), r"\tfrac{3}{4}", 1.0),
        (tag("(1, 2)"), "(1,2)", 1.0),  # tuples
        (tag("[1, 3)"), "[1,3)", 1.0),  # intervals
        (tag(r"(3,4)\cup(1,2)"), r"(1,2)\cup(3,4)", 1.0),
        (tag("x=2"), "2", 1.0),  # equations against values, both ways
        (tag("2"), "x=2", 1.0),
        (tag("1.5e3"), "1500", 1.0),  # scientific notation
        (tag(r"3.5\times10^{4}"), "35000", 1.0),
        (tag(r"-2 \le x \le 7"), r"x \in [-2,7]", 1.0),  # relation vs set, either side gold
        (tag(r"x \in [-2,7]"), r"-2 \le x \le 7", 1.0),
        (tag(r"2\sqrt{2}"), r"\sqrt{8}", 1.0),
        (tag("0.333333"), r"\frac{1}{3}", 1.0),  # decimals rounded to 6 places
        # -- must not hold --
        (tag("1.414"), r"\sqrt2", 0.0),  # not at the default precision
        (tag(r"\frac{1}{2006!}"), r"\frac{1}{2004!}", 0.0),  # Math-Verify alone says equal
        (tag("0.333"), r"\frac{1}{3}", 0.0),
        (tag("28"), "0.28", 0.0),  # no percent sign, no percent reading
        (tag("(2,1)"), "(1,2)", 0.0),  # tuples keep order
        (tag("[1,2)"), "[1,2]", 0.0),
        (tag("32, 349"), "32349", 0.0),  # a list, not a thousands separator
        (tag("-3"), "3", 0.0),
        # -- where the answer is found --
        (tag(r"The answer is $\frac{\pi}{2}$."), r"\frac{\pi}{2}", 1.0),
        (tag(r"x = \boxed{5}"), "5", 1.0),
        (tag(r"\(\frac{1}{2}\)"), "0.5", 1.0),
        (tag(r"\boxed{-2} \text{ and } \boxed{1}"), "1,-2", 1.0),  # boxes side by side
        ("<think>It is 12.</think><answer>13</answer>", "12", 0.0),  # the thought is not the answer
        ("<answer>11</answer> no wait <answer>12</answer>", "12", 1.0),  # the last block counts
        ("The answer is 5.", "5", 0.0),  # strict tags: no block, no answer
        # -- references --
        (tag("7"), r"\boxed{7}", 1.0),  # a boxed gold
        (tag("five"), ["5", "five"], 1.0),  # several acceptable answers
        (tag("3.0"), 3, 1.0),  # a numeric gold
        # -- letter golds go to choice matching --
        (tag("(B)"), "B", 1.0),
        (tag("**B**"), "B", 1.0),
        (tag("The answer is B"), "B", 1.0),
        (tag("Answer: C"), "A", 0.0),  # the recipe reads the first character, "A"
        (tag("A"), "A. 5", 1.0),  # a gold written as an option: its letter...
        (tag("5"), "A. 5", 1.0),  # ...or its text
        (tag("B"), "A. 5", 0.0),
    ],
)
def test_known_answers(response: str, reference: Any, expected: float) -> None:
    assert score(response, reference) == expected


@pytest.mark.parametrize(
    "response,reference,choices,expected",
    [
        (tag("42"), "B", ("41", "42", "43"), 1.0),  # the option's text for a letter gold
        (tag("41"), "B", ("41", "42", "43"), 0.0),
        (tag("B"), "42", ("41", "42", "43"), 1.0),  # a letter for a text gold
        (tag("C"), "42", ("41", "42", "43"), 0.0),
    ],
)
def test_choices(response: str, reference: str, choices: tuple[str, ...], expected: float) -> None:
    assert score(response, reference, ItemContext(choices=choices)) == expected


def test_lenient_mode_reads_boxed_and_phrases() -> None:
    assert score(r"so the total is \boxed{\frac{3}{4}}", "0.75", strict_tags=False) == 1.0
    assert score("Therefore the final answer is 12.", "12", strict_tags=False) == 1.0
    assert score(r"so the total is \boxed{\frac{3}{4}}", "0.75") == 0.0  # strict by default


def test_float_rounding_option() -> None:
    assert score(tag("0.333"), r"\frac{1}{3}", float_rounding=3) == 1.0
    assert score(tag("0.333"), r"\frac{1}{3}") == 0.0


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


# -- the labelled corpus ----------------------------------------------------------------


def corpus_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]


def test_corpus_is_big_balanced_and_sourced() -> None:
    rows = corpus_rows()
    assert len(rows) >= 300
    assert sum(not r["equivalent"] for r in rows) >= len(rows) / 4
    assert all(r["source"].strip() and "gold" in r and "response" in r for r in rows)


def test_corpus_agreement_is_at_least_97_percent() -> None:
    rows = corpus_rows()
    wrong = []
    for row in rows:
        completion = row["response"] if row.get("completion") else tag(row["response"])
        if (score(completion, row["gold"]) == 1.0) != row["equivalent"]:
            wrong.append((row["gold"], row["response"][:80], row["source"]))
    assert len(wrong) <= 0.03 * len(rows), wrong


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
