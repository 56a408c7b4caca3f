"""Answer extraction and format checks of the core (RECIPE.md's contract)."""

from __future__ import annotations

import pytest

from reward_server.extraction import (
    extract_answer,
    format_reward,
    last_fenced_block,
    last_tag_content,
    tag_blocks,
    think_has_box,
)


@pytest.mark.parametrize(
    "response,expected",
    [
        ("<answer>B</answer>", "B"),
        ("<answer>A</answer> then <answer> C </answer>", "C"),  # the LAST block counts
        ("< answer >B</ answer >", "B"),  # spaces inside tags, as some models emit
        ("<ANSWER>B</ANSWER>", "B"),
        ("<answer>x<answer>y</answer>", "y"),  # a stray opening tag does not swallow text
        ("<answer>B", None),  # no closing tag: no answer (the recipe)
        ("B", None),
        ("</answer><answer>", None),
    ],
)
def test_last_answer_block(response: str, expected: str | None) -> None:
    assert last_tag_content(response) == expected


@pytest.mark.parametrize(
    "response,expected",
    [
        ("so \\boxed{\\frac{1}{2}} done", "\\frac{1}{2}"),  # balanced braces
        ("The final answer is 42.\n", "42."),
        ("blah\nAnswer: (C)", "(C)"),
        ("first line\n\nlast line\n", "last line"),
        ("<answer>7</answer> \\boxed{8}", "7"),  # the tag still wins
    ],
)
def test_lenient_fallbacks(response: str, expected: str) -> None:
    assert extract_answer(response, strict_tags=False) == expected
    if "<answer>" not in response:
        assert extract_answer(response, strict_tags=True) is None


@pytest.mark.parametrize(
    "response,chain_of_thought,expected",
    [
        ("<answer>B</answer>", False, 1.0),
        ("  <answer>B</answer>\n", False, 1.0),
        ("Sure. <answer>B</answer>", False, 0.0),  # text outside the block
        ("<answer>A</answer><answer>B</answer>", False, 0.0),  # two blocks
        ("<think>x</think><answer>B</answer>", False, 0.0),  # thinking in answer-only
        ("<think>x</think>\n<answer>B</answer>", True, 1.0),
        ("<answer>B</answer><think>x</think>", True, 0.0),  # wrong order
        ("<think>x</think>", True, 0.0),
        ("<think>a</think><think>b</think><answer>B</answer>", True, 0.0),
    ],
)
def test_format_reward(response: str, chain_of_thought: bool, expected: float) -> None:
    assert format_reward(response, chain_of_thought) == expected


def test_think_box_bonus_needs_a_box_inside_think() -> None:
    assert think_has_box("<think>cup at [1, 2, 3.5, 4]</think><answer>A</answer>")
    assert not think_has_box("<think>cup at (1, 2)</think><answer>[1, 2, 3, 4]</answer>")
    assert not think_has_box("<think>unclosed [1, 2, 3, 4]")


def test_blocks_pair_each_close_with_the_latest_open() -> None:
    text = "<think>a</think> <think>b<think>c</think>"
    assert [text[s:e] for s, e in tag_blocks(text, "think")] == ["a", "c"]


def test_hostile_many_unclosed_tags_are_handled() -> None:
    # 200k unclosed openings and closings: a lazy regex search would be quadratic here
    hostile = "<answer>" * 100_000 + "x" + "</think>" * 100_000
    assert last_tag_content(hostile) is None
    assert format_reward(hostile, True) == 0.0
    assert not think_has_box(hostile)
    assert extract_answer(hostile + "<answer>ok</answer>") == "ok"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("```html\n<p>a</p>\n```", "<p>a</p>"),  # the language line is dropped
        ("```one``` and ```\ntwo\n```", "two"),  # the last block
        ("```svg\n<svg>", "<svg>"),  # a final fence cut off runs to the end
        ("no fences", None),
    ],
)
def test_last_fenced_block(text: str, expected: str | None) -> None:
    assert last_fenced_block(text) == expected
