"""Known answers for `boolean`, including the recipe's defect (RECIPE.md)."""

from __future__ import annotations

import pytest

from reward_server import registry
from reward_server.types import ItemContext, Reference
from reward_server.verifiers import boolean


def score(response: str, reference: Reference, **options: object) -> tuple[str | None, float]:
    """extract then compare, as the engine does, with the registry's default options."""
    opts = registry.build_options("boolean", options)
    extracted = boolean.extract(response, opts, ItemContext())
    if extracted is None:
        return None, 0.0
    return extracted, boolean.compare(extracted, reference, opts, ItemContext()).score


def tagged(text: str) -> str:
    return f"<answer>{text}</answer>"


@pytest.mark.parametrize(
    "response,reference,expected",
    [
        # -- recipe defect: not knowing is not "no" --
        ("I don't know", "no", 0.0),
        ("I do not know.", "no", 0.0),
        ("No idea", "no", 0.0),
        ("Not sure", "no", 0.0),
        ("It cannot be determined from the image.", "no", 0.0),
        # -- plain words --
        ("yes", "yes", 1.0),
        ("Yes.", "Yes", 1.0),
        ("YES", "yes", 1.0),
        ("no", "no", 1.0),
        ("No.", "yes", 0.0),
        ("true", "yes", 1.0),
        ("False", "no", 1.0),
        ("**Yes**", "yes", 1.0),
        ("Y", "yes", 1.0),  # a lone letter
        ("yes", True, 1.0),  # a bool gold
        ("no", False, 1.0),
        ("no", True, 0.0),
        # -- words, not substrings --
        ("nothing", "no", 0.0),
        ("Eyes", "yes", 0.0),
        ("untrue", "yes", 0.0),
        ("know", "no", 0.0),
        # -- sentences --
        ("Yes, there are no cats.", "yes", 1.0),  # opens with the side it takes
        ("No, it is not red.", "no", 1.0),
        ("The statement is true.", "yes", 1.0),
        ("That is not true.", "no", 1.0),  # negated
        ("The man is wearing a hat: yes", "yes", 1.0),
        # -- hedges --
        ("yes or no", "yes", 0.0),
        ("Yes/No", "no", 0.0),
        ("Yes. No.", "yes", 0.0),
        ("maybe", "yes", 0.0),
    ],
)
def test_known_answers(response: str, reference: Reference, expected: float) -> None:
    assert score(tagged(response), reference)[1] == expected


def test_extract_normalizes() -> None:
    opts = registry.build_options("boolean", {})
    assert boolean.extract(tagged("True."), opts, ItemContext()) == "yes"
    assert boolean.extract(tagged("Yes or  No"), opts, ItemContext()) == "yes or no"


def test_hedge_message() -> None:
    opts = registry.build_options("boolean", {})
    verdict = boolean.compare("yes or no", "yes", opts, ItemContext())
    assert verdict.score == 0.0 and verdict.status == "ok"
    assert verdict.message and "both" in verdict.message


def test_missing_tag_and_lenient_mode() -> None:
    assert score("Yes", "yes") == (None, 0.0)
    assert score("Looking closely.\nAnswer: yes", "yes", strict_tags=False) == ("yes", 1.0)


def test_bad_reference_is_error() -> None:
    opts = registry.build_options("boolean", {})
    assert boolean.compare("yes", "perhaps", opts, ItemContext()).status == "error"
