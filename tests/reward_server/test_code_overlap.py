"""Token and tag-name Jaccard of markup (the recipe's code-overlap terms)."""

from __future__ import annotations

import pytest

from reward_server.code_overlap import tag_jaccard, tag_names, token_jaccard, tokens

CIRCLE = '<svg width="10"><circle cx="5" cy="5" r="4" fill="#FF0000"/></svg>'


def test_tokens_follow_the_recipe() -> None:
    # word runs, hex colours (lower-cased) and markup punctuation; spaces dropped
    assert tokens('<rect fill="#FF0000"/>') == {"<", "rect", "fill", "=", '"', "#ff0000", "/", ">"}


def test_tag_names_are_opening_tags_only() -> None:
    assert tag_names("<svg><g><path d='M0 0'/></g></svg>") == {"svg", "g", "path"}
    assert tag_names("<SVG xmlns:xlink='x'><svg:rect/></SVG>") == {"svg", "svg:rect"}


@pytest.mark.parametrize(
    "a,b,expected",
    [
        (CIRCLE, CIRCLE, 1.0),  # identical
        (CIRCLE, CIRCLE.upper(), 1.0),  # case does not matter
        ("", "", 0.0),  # nothing to compare earns nothing
        ("", CIRCLE, 0.0),  # empty answer
        ("a b", "b c", 1 / 3),  # {b} / {a, b, c}
    ],
)
def test_token_jaccard_table(a: str, b: str, expected: float) -> None:
    assert token_jaccard(a, b) == pytest.approx(expected)


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ("<svg><circle/></svg>", "<svg><circle></circle></svg>", 1.0),  # self-closing or not
        ("<svg><circle/></svg>", "<svg><rect/></svg>", 1 / 3),  # {svg} / {svg, circle, rect}
        ("no markup", "<svg/>", 0.0),  # text without tags
        ("", "", 0.0),  # nothing to compare
        ("<svg><circle", "<svg><circle/></svg>", 1.0),  # truncated: names still found
    ],
)
def test_tag_jaccard_table(a: str, b: str, expected: float) -> None:
    assert tag_jaccard(a, b) == pytest.approx(expected)


def test_symmetric_and_bounded() -> None:
    other = "<svg><text x='1'>Hello</text><path d='M 0 0 L 5 5'/></svg>"
    assert token_jaccard(CIRCLE, other) == token_jaccard(other, CIRCLE)
    assert 0.0 < token_jaccard(CIRCLE, other) < 1.0
    assert tag_jaccard(CIRCLE, other) == pytest.approx(1 / 4)  # {svg} / {svg, circle, text, path}


def test_many_unclosed_tags_are_handled() -> None:
    # a run of '<' with no '>' must not trip a backtracking pattern
    hostile = "<a" * 200_000
    assert tag_names(hostile) == {"a"}
    assert token_jaccard(hostile, "<a>") == pytest.approx(2 / 3)  # {<, a} / {<, a, >}
