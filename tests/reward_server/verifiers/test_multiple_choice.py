"""`multiple-choice`: extraction, messages, strict and lenient tags. Its known answers
(including the recipe's defects) are rows in
`reward_server/known_answers/multiple_choice.jsonl`."""

from __future__ import annotations

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


def test_empty_reference_is_error() -> None:
    opts = registry.build_options("multiple-choice", {})
    assert multiple_choice.compare("B", [], opts, ItemContext()).status == "error"
