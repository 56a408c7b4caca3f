"""`any` (case-insensitive) and `critic` (case-sensitive) exact match: registry rows,
tags, components. Their known answers are rows in `reward_server/known_answers/exact.jsonl`."""

from __future__ import annotations

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
