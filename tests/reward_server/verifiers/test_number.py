"""`number` (counting): canonical extraction, messages, huge numbers. Its known answers
(including the recipe's defects and the tolerances) are rows in
`reward_server/known_answers/number.jsonl`."""

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
