"""Known answers for `ocrtext` (ANLS), including the recipe's defect (RECIPE.md)."""

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


@pytest.mark.parametrize(
    "response,reference,expected",
    [
        ("hello world", "hello world", 1.0),
        ("Hello   World", "hello world", 1.0),  # case and spaces are normalized
        # -- recipe defect: the gold's raw length must not count --
        ("abcd", "  ABCD  ", 1.0),
        ("abcx", "  ABCD  ", 0.75),  # 1 edit / 4 normalized characters, not / 8
        ("abcx", "abcd", 0.75),
        ("abcdefghij", "abcdefghiX", 0.9),
        # -- threshold 0.5 --
        ("abxx", "abcd", 0.0),  # NL = 0.5 is not below the threshold
        ("abcxx", "abcde", 0.6),
        ("zzzz", "abcd", 0.0),
        ("longer answer", "ans", 0.0),  # divided by the longer string
        # -- several golds: the best --
        ("Paris", ["London", "paris"], 1.0),
        ("pariz", ["London", "Paris"], 0.8),
        ("Rome", ["London", "Paris"], 0.0),
        ("42", 42, 1.0),  # a numeric gold is compared as text
    ],
)
def test_known_answers(response: str, reference: Reference, expected: float) -> None:
    assert score(tagged(response), reference)[1] == pytest.approx(expected)


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
