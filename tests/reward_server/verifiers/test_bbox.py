"""`bbox`: canonical extraction, messages, options, hostile text. Its known answers
(forms, IoU values, the recipe's defects, options) are rows in
`reward_server/known_answers/bbox.jsonl`."""

from __future__ import annotations

import pytest

from reward_server import registry
from reward_server.types import ItemContext, Reference
from reward_server.verifiers import bbox

SQUARE = [0, 0, 10, 10]


def score(response: str, reference: Reference, **options: object) -> tuple[str | None, float]:
    """extract then compare, as the engine does, with the registry's default options."""
    opts = registry.build_options("bbox", options)
    extracted = bbox.extract(response, opts, ItemContext())
    if extracted is None:
        return None, 0.0
    return extracted, bbox.compare(extracted, reference, opts, ItemContext()).score


def tagged(text: str) -> str:
    return f"<answer>{text}</answer>"


def test_components_and_messages() -> None:
    opts = registry.build_options("bbox", {"iou_threshold": 0.5})
    verdict = bbox.compare("[5, 5, 15, 15]", SQUARE, opts, ItemContext())
    assert verdict.score == 0.0 and verdict.components == {"iou": pytest.approx(1 / 7)}
    degenerate = bbox.compare("[10, 10, 10, 20]", SQUARE, opts, ItemContext())
    assert degenerate.status == "ok" and degenerate.message and "area" in degenerate.message
    unconvertible = bbox.compare(
        "[0.1, 0.1, 0.5, 0.5]",
        [64, 48, 320, 240],
        registry.build_options("bbox", {}),
        ItemContext(),
    )
    assert unconvertible.message and "image_width" in unconvertible.message


def test_extract_canonical_form() -> None:
    opts = registry.build_options("bbox", {})
    assert bbox.extract(tagged("<box>(1,2),(3.5,4)</box>"), opts, ItemContext()) == "[1, 2, 3.5, 4]"
    assert bbox.extract(tagged("[[0,0],[1,0],[0,1]]"), opts, ItemContext()) == (
        "[[0, 0], [1, 0], [0, 1]]"
    )
    assert bbox.extract(tagged("nothing"), opts, ItemContext()) == "nothing"


def test_missing_tag_and_lenient_mode() -> None:
    assert score("[0, 0, 10, 10]", SQUARE) == (None, 0.0)
    assert score("The box:\n[0, 0, 10, 10]", SQUARE, strict_tags=False)[1] == 1.0


def test_bad_reference_is_error() -> None:
    opts = registry.build_options("bbox", {})
    assert bbox.compare("[0, 0, 1, 1]", "no box", opts, ItemContext()).status == "error"


def test_scale_option_is_validated() -> None:
    assert registry.build_options("bbox", {"pred_scale": "pixels"}).pred_scale == "pixels"
    assert registry.build_options("bbox", {"pred_scale": 1000}).pred_scale == 1000
    with pytest.raises(registry.OptionsError):
        registry.build_options("bbox", {"pred_scale": "inches"})


@pytest.mark.parametrize(
    "response",
    [
        "<box>" * 5000,  # many unclosed tags
        "[1" * 5000,  # unclosed brackets
        "(1,2)" + " " * 10000 + "x",
        "[" * 5000 + "]" * 5000,  # deep JSON nesting
    ],
)
def test_hostile_text_scores_zero(response: str) -> None:
    assert score(tagged(response), SQUARE)[1] == 0.0
