"""`boolean`: extraction, messages, strict and lenient tags. Its known answers (including
the recipe's defect) are rows in `reward_server/known_answers/boolean.jsonl`."""

from __future__ import annotations

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
