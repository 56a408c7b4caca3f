"""Known answers for `multiple-choice`, including the recipe's defects (RECIPE.md)."""

from __future__ import annotations

import pytest

from reward_server import registry
from reward_server.types import ItemContext, Reference
from reward_server.verifiers import multiple_choice

CHOICES = ("dog", "cat", "bird", "fish")


def score(
    response: str, reference: Reference, choices: tuple[str, ...] | None = None, **options: object
) -> tuple[str | None, float]:
    """extract then compare, as the engine does, with the registry's default options."""
    opts = registry.build_options("multiple-choice", options)
    context = ItemContext(choices=choices)
    extracted = multiple_choice.extract(response, opts, context)
    if extracted is None:
        return None, 0.0
    return extracted, multiple_choice.compare(extracted, reference, opts, context).score


def tagged(text: str) -> str:
    return f"<answer>{text}</answer>"


@pytest.mark.parametrize(
    "response,reference,expected",
    [
        # -- recipe defects --
        ("Answer: C", "A", 0.0),  # the recipe compares the first character "A"
        ("**B**", "B", 1.0),  # the recipe rejects markdown bold
        ("The answer is B", "B", 1.0),  # the recipe rejects the sentence
        # -- letter forms --
        ("B", "B", 1.0),
        ("b", "B", 1.0),  # a lone lower-case letter is the letter
        ("(B)", "B", 1.0),
        ("B.", "B", 1.0),
        ("[B]", "B", 1.0),
        ("b) cat", "B", 1.0),
        ("B. cat", "B", 1.0),
        ("(b) cat", "B", 1.0),
        ("B: cat", "B", 1.0),
        ("Answer: B", "B", 1.0),
        ("The answer is (B)", "B", 1.0),
        ("The correct answer is: B.", "B", 1.0),
        ("Option B", "B", 1.0),
        ("\\boxed{B}", "B", 1.0),
        ("$\\boxed{\\text{B}}$", "B", 1.0),
        ("`B`", "B", 1.0),
        ("B because the cat is larger", "B", 1.0),
        ("B, since A is wrong", "B", 1.0),  # the leading letter is the answer
        ("C is correct", "C", 1.0),
        ("A is correct", "A", 1.0),  # "A is": the letter, not an article
        ("I think the answer is b.", "B", 1.0),
        ("I think B", "B", 1.0),  # "I" is the pronoun, not option I
        ("It's C.", "C", 1.0),
        ("答案是B", "B", 1.0),  # a letter after non-ASCII text
        ("B.\n\nExplanation: A is too small.", "B", 1.0),
        # -- wrong, hedged or several --
        ("B", "A", 0.0),
        ("A or B", "A", 0.0),  # a hedge
        ("either (A) or (B)", "A", 0.0),
        ("A and C", "A", 0.0),
        ("A, C", "A", 0.0),
        ("A/B", "B", 0.0),
        ("AC", "A", 0.0),
        ("A cat", "A", 0.0),  # the article, no option named
        ("I don't know", "A", 0.0),
        ("", "A", 0.0),
        # -- gold in other dress --
        ("B", "(B)", 1.0),
        ("B", "B.", 1.0),
        ("B", "b", 1.0),
        ("B", ["B", "D"], 1.0),  # a list of acceptable golds
        ("C", ["B", "D"], 0.0),
    ],
)
def test_letters(response: str, reference: Reference, expected: float) -> None:
    assert score(tagged(response), reference)[1] == expected


@pytest.mark.parametrize(
    "response,reference,expected",
    [
        ("cat", "B", 1.0),  # the option text alone
        ("Cat.", "B", 1.0),  # case and a closing period do not matter
        ("B. cat", "B", 1.0),
        ("B cat", "B", 1.0),  # letter followed by that option's text
        ("dog", "B", 0.0),
        ("B", "cat", 1.0),  # the gold given as option text
        ("cat", "cat", 1.0),
        ("E", "B", 0.0),  # out of range for four choices
        ("(E)", "E", 0.0),  # out of range even if the gold says so
        ("A cat", "B", 0.0),  # the article, not option A nor the text
        ("I", "A", 0.0),  # option I does not exist among four
    ],
)
def test_with_choices(response: str, reference: Reference, expected: float) -> None:
    assert score(tagged(response), reference, CHOICES)[1] == expected


def test_extract_returns_letter_or_text() -> None:
    opts = registry.build_options("multiple-choice", {})
    assert multiple_choice.extract(tagged("The answer is (c)."), opts, ItemContext()) == "C"
    assert multiple_choice.extract(tagged("A or B"), opts, ItemContext()) == "A or B"
    assert multiple_choice.extract(tagged("cat"), opts, ItemContext(choices=CHOICES)) == "B"


def test_out_of_range_message() -> None:
    opts = registry.build_options("multiple-choice", {})
    verdict = multiple_choice.compare("E", "B", opts, ItemContext(choices=CHOICES))
    assert verdict.score == 0.0 and verdict.status == "ok"
    assert verdict.message and "outside" in verdict.message
    assert verdict.components == {"accuracy": 0.0}


def test_missing_tag_is_no_answer() -> None:
    assert score("The answer is B", "B") == (None, 0.0)


def test_lenient_mode_reads_untagged_answers() -> None:
    assert score("Let me think.\nThe answer is (B).", "B", strict_tags=False) == ("B", 1.0)
    assert score("so \\boxed{C}", "C", strict_tags=False) == ("C", 1.0)
    assert score("Reasoning...\nAnswer: C", "A", strict_tags=False) == ("C", 0.0)


def test_last_answer_block_counts() -> None:
    assert score(tagged("A") + " then " + tagged("B"), "B")[1] == 1.0


def test_empty_reference_is_error() -> None:
    opts = registry.build_options("multiple-choice", {})
    assert multiple_choice.compare("B", [], opts, ItemContext()).status == "error"
