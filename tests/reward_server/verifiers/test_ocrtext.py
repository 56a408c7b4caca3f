"""`ocrtext` (ANLS): components, the threshold option, extraction. Its known answers
(including the recipe's defect) are rows in `reward_server/known_answers/ocrtext.jsonl`."""

from __future__ import annotations

import pytest

from reward_server import registry
from reward_server.types import ItemContext, Reference
from reward_server.verifiers import ocrtext


def score(response: str, reference: Reference, **options: object) -> tuple[str | None, float]:
    """extract then compare, as the engine does, with the registry's default options."""
    opts = registry.build_options("ocrtext", options)
    extracted = ocrtext.extract(response, opts, ItemContext())
    if extracted is None:
        return None, 0.0
    return extracted, ocrtext.compare(extracted, reference, opts, ItemContext()).score


def tagged(text: str) -> str:
    return f"<answer>{text}</answer>"


def test_components_and_threshold_option() -> None:
    opts = registry.build_options("ocrtext", {"threshold": 0.3})
    verdict = ocrtext.compare("abcxx", "abcde", opts, ItemContext())
    assert verdict.score == 0.0  # NL = 0.4 is over the stricter threshold
    assert verdict.components == {"anls": 0.0, "similarity": pytest.approx(0.6)}


def test_extract_normalizes() -> None:
    opts = registry.build_options("ocrtext", {})
    assert ocrtext.extract(tagged("  Total:\n  $1,200 "), opts, ItemContext()) == "total: $1,200"


def test_missing_tag_and_lenient_mode() -> None:
    assert score("Paris", "Paris") == (None, 0.0)
    assert score("Paris", "Paris", strict_tags=False) == ("paris", 1.0)


def test_empty_reference_is_error() -> None:
    opts = registry.build_options("ocrtext", {})
    assert ocrtext.compare("x", [], opts, ItemContext()).status == "error"
