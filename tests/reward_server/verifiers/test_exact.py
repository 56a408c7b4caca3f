"""Known answers for `any` (case-insensitive) and `critic` (case-sensitive) exact match."""

from __future__ import annotations

import pytest

from reward_server import registry
from reward_server.types import ItemContext, Reference
from reward_server.verifiers import exact


def score(name: str, response: str, reference: Reference, **options: object) -> float:
    """extract then compare, as the engine does, with the registry row's default options."""
    opts = registry.build_options(name, options)
    extracted = exact.extract(response, opts, ItemContext())
    if extracted is None:
        return 0.0
    return exact.compare(extracted, reference, opts, ItemContext()).score


def tagged(text: str) -> str:
    return f"<answer>{text}</answer>"


@pytest.mark.parametrize(
    "response,reference,expected",
    [
        ("Red", "red", 1.0),  # case folded
        ("  red \n", "red", 1.0),  # trimmed
        ("dark   red", "Dark Red", 1.0),  # whitespace collapsed
        ("red.", "red", 0.0),  # exact: punctuation counts
        ("blue", "red", 0.0),
        ("Blue", ["red", "blue"], 1.0),  # any acceptable gold
        ("12", 12, 1.0),  # a numeric gold compared by its text
        ("STRASSE", "straße", 1.0),  # casefold, not lower
    ],
)
def test_any(response: str, reference: Reference, expected: float) -> None:
    assert score("any", tagged(response), reference) == expected


@pytest.mark.parametrize(
    "response,reference,expected",
    [
        ("Correct", "Correct", 1.0),
        (" Correct ", "Correct", 1.0),  # trimmed
        ("correct", "Correct", 0.0),  # case counts
        ("Incorrect", ["Correct", "Incorrect"], 1.0),
        ("Correct.", "Correct", 0.0),
    ],
)
def test_critic(response: str, reference: Reference, expected: float) -> None:
    assert score("critic", tagged(response), reference) == expected


def test_registry_rows_set_case_sensitivity() -> None:
    assert registry.build_options("any", {}).case_sensitive is False
    assert registry.build_options("critic", {}).case_sensitive is True
    assert score("critic", tagged("correct"), "Correct", case_sensitive=False) == 1.0


def test_missing_tag_and_lenient_mode() -> None:
    assert score("any", "red", "red") == 0.0
    opts = registry.build_options("any", {})
    assert exact.extract("red", opts, ItemContext()) is None
    assert score("any", "Thinking...\nAnswer: Red", "red", strict_tags=False) == 1.0


def test_components() -> None:
    opts = registry.build_options("any", {})
    assert exact.compare("red", "red", opts, ItemContext()).components == {"accuracy": 1.0}
