"""Known answers for `number` (counting), including the recipe's defects (RECIPE.md)."""

from __future__ import annotations

import pytest

from reward_server import registry
from reward_server.types import ItemContext, Reference
from reward_server.verifiers import number


def score(response: str, reference: Reference, **options: object) -> tuple[str | None, float]:
    """extract then compare, as the engine does, with the registry's default options."""
    opts = registry.build_options("number", options)
    extracted = number.extract(response, opts, ItemContext())
    if extracted is None:
        return None, 0.0
    return extracted, number.compare(extracted, reference, opts, ItemContext()).score


def tagged(text: str) -> str:
    return f"<answer>{text}</answer>"


@pytest.mark.parametrize(
    "response,reference,expected",
    [
        # -- recipe defects --
        ("1,000", "1000", 1.0),  # thousands separator
        ("3.0", "3", 1.0),  # trailing zero decimal
        ("12.", "12", 1.0),  # trailing period
        ("twelve", "12", 1.0),  # number word
        ("-4", "-4", 1.0),  # negative number
        ("-4", "4", 0.0),  # and the sign counts
        # -- plain numbers --
        ("3", 3, 1.0),
        ("3", 3.0, 1.0),
        ("3", "3.0", 1.0),
        ("4", 3, 0.0),
        ("30", 3, 0.0),
        ("0", 0, 1.0),
        ("2.5", 2.5, 1.0),
        (".5", "0.5", 1.0),
        ("−4", -4, 1.0),  # unicode minus
        ("1,234,567", 1234567, 1.0),
        ("$\\boxed{7}$", 7, 1.0),
        # -- sentences: the last number stated wins --
        ("There are 3 apples.", 3, 1.0),
        ("I count 2 red and 3 green, so 5 in total.", 5, 1.0),
        ("I count 5 in total, 2 red and 3 green.", 5, 1.0),  # the total, then its parts
        ("There are 3-4 birds", 4, 1.0),  # a range: the hyphen is no minus sign
        ("COVID-19 cases: 12", 12, 1.0),
        # -- number words --
        ("There are seven cats.", 7, 1.0),
        ("Twenty", 20, 1.0),
        ("twenty-one", 21, 1.0),
        ("twenty one", 21, 1.0),
        ("a dozen", 12, 1.0),
        ("two dozen", 24, 1.0),
        ("one hundred and five", 105, 1.0),
        ("zero", 0, 1.0),
        ("none", 0, 1.0),
        ("There are no dogs.", 0, 1.0),  # "no" with no number stated
        ("I don't know", 0, 0.0),
        ("3 birds and the one on the left", 3, 1.0),  # "the one" is a pronoun
        ("only one", 1, 1.0),
        ("someone has often seen 4", 4, 1.0),  # no numbers inside words
        # -- golds in other forms --
        ("12", "twelve", 1.0),
        ("12", ["11", "12"], 1.0),  # several acceptable counts
        ("13", ["11", "12"], 0.0),
        ("1000", "1,000", 1.0),
        # -- no number --
        ("many", 3, 0.0),
        ("", 3, 0.0),
    ],
)
def test_known_answers(response: str, reference: Reference, expected: float) -> None:
    assert score(tagged(response), reference)[1] == expected


@pytest.mark.parametrize(
    "response,expected",
    [
        ("1,000", "1000"),
        ("3.0", "3"),
        ("12.", "12"),
        ("2.50", "2.5"),
        ("-0", "0"),
        ("There are twelve apples.", "12"),
    ],
)
def test_extract_canonical_form(response: str, expected: str) -> None:
    opts = registry.build_options("number", {})
    assert number.extract(tagged(response), opts, ItemContext()) == expected


def test_tolerances() -> None:
    assert score(tagged("3.14"), 3.14159)[1] == 0.0
    assert score(tagged("3.14"), 3.14159, rel_tol=0.01)[1] == 1.0
    assert score(tagged("10"), 12, abs_tol=1.0)[1] == 0.0
    assert score(tagged("11"), 12, abs_tol=1.0)[1] == 1.0


def test_missing_tag_is_no_answer() -> None:
    assert score("There are 3 apples.", 3) == (None, 0.0)


def test_lenient_mode() -> None:
    assert score("I count them.\nThere are 3 apples.", 3, strict_tags=False) == ("3", 1.0)


def test_no_number_message_and_bad_reference() -> None:
    opts = registry.build_options("number", {})
    verdict = number.compare("many", 3, opts, ItemContext())
    assert verdict.score == 0.0 and verdict.status == "ok" and verdict.message
    assert number.compare("3", "lots", opts, ItemContext()).status == "error"


def test_huge_number_is_kept_exactly() -> None:
    # Beyond Python's int/str conversion limit and Decimal's 28-digit context.
    digits = "9" * 5000
    assert score(tagged(digits), digits) == (digits, 1.0)
    assert (
        score(tagged("1234567890123456789012345678901"), "1234567890123456789012345678902")[1]
        == 0.0
    )
