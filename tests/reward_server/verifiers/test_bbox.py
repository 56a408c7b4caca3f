"""Known answers for `bbox` (IoU), including the recipe's defects (RECIPE.md)."""

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


@pytest.mark.parametrize(
    "response,reference,expected",
    [
        # -- forms of the same box --
        ("[0, 0, 10, 10]", SQUARE, 1.0),
        ("(0, 0, 10, 10)", SQUARE, 1.0),
        ("[[0, 0, 10, 10]]", SQUARE, 1.0),  # nested list
        ("[0 0 10 10]", SQUARE, 1.0),
        ("<box>(0,0),(10,10)</box>", SQUARE, 1.0),
        ("<box>0 0 10 10</box>", SQUARE, 1.0),
        ("<|box_start|>(0,0),(10,10)<|box_end|>", SQUARE, 1.0),  # Qwen-VL
        ("[[0, 0], [10, 10]]", SQUARE, 1.0),  # corner points
        ('{"bbox_2d": [0, 0, 10, 10], "label": "cat"}', SQUARE, 1.0),
        ('```json\n[{"bbox_2d": [0, 0, 10, 10], "label": "cat"}]\n```', SQUARE, 1.0),
        ("The cat is at [0, 0, 10, 10].", SQUARE, 1.0),
        ("0, 0, 10, 10", SQUARE, 1.0),  # four bare numbers
        ("[0.0, 0.0, 10.0, 10.0]", SQUARE, 1.0),
        # -- IoU values (continuous area, no +1) --
        ("[5, 5, 15, 15]", SQUARE, 25 / 175),
        ("[0, 0, 10, 5]", SQUARE, 0.5),
        ("[20, 20, 30, 30]", SQUARE, 0.0),  # disjoint
        ("[0, 0, 10, 10] then [20, 20, 30, 30]", [20, 20, 30, 30], 0.0),  # the first box counts
        ("[0.1, 0.1, 0.3, 0.5]", [0.1, 0.1, 0.5, 0.5], 0.5),
        # -- recipe defect: degenerate boxes score 0, never raise --
        ("[10, 10, 10, 20]", SQUARE, 0.0),  # zero width
        ("[0, 0, 0, 0]", SQUARE, 0.0),
        ("[10, 10, 0, 0]", SQUARE, 0.0),  # inverted
        ("[0, 0, 10]", SQUARE, 0.0),  # three numbers
        ("[NaN, 0, 10, 10]", SQUARE, 0.0),
        ("[1e999, 0, 10, 10]", SQUARE, 0.0),  # infinite
        ("no box here", SQUARE, 0.0),
        ("", SQUARE, 0.0),
        # -- recipe defect: 0..1000 predictions against 0..1 golds are converted --
        ("[100, 100, 500, 500]", [0.1, 0.1, 0.5, 0.5], 1.0),
        ("<box>(100,200),(300,400)</box>", [0.1, 0.2, 0.3, 0.4], 1.0),
        # -- references in other shapes --
        ("[0, 0, 10, 10]", "[0, 0, 10, 10]", 1.0),  # a string
        ("[0, 0, 10, 10]", ["[0, 0, 10, 10]"], 1.0),  # a list of strings (data rows)
        ("[0, 0, 10, 10]", ["0", "0", "10", "10"], 1.0),
        ("[0, 0, 10, 10]", [[20, 20, 30, 30], SQUARE], 1.0),  # several golds: the best
        ("[0, 0, 10, 10]", [[0, 0], [10, 0], [0, 10]], 0.5),  # a triangle gold
        # -- polygons --
        ("[[0, 0], [10, 0], [10, 10], [0, 10]]", SQUARE, 1.0),
        ("[[0, 0], [10, 10], [10, 0], [0, 10]]", SQUARE, 0.5),  # a bow tie: made valid
        ("[[0, 0], [5, 5], [10, 10]]", SQUARE, 0.0),  # collinear: no area
    ],
)
def test_known_answers(response: str, reference: Reference, expected: float) -> None:
    assert score(tagged(response), reference)[1] == pytest.approx(expected)


@pytest.mark.parametrize(
    "response,reference,options,expected",
    [
        # -- box layouts --
        ("[5, 5, 15, 15]", [5, 5, 10, 10], {"box_format": "xywh"}, 1.0),
        ("[5, 5, 10, 10]", [5, 5, 15, 15], {"pred_box_format": "xywh"}, 1.0),
        ("[5, 5, 15, 15]", [5, 5, 10, 10], {}, 0.25),  # read as xyxy
        # -- pixels converted with the image size (recipe golds are 0..1) --
        (
            "[200, 300, 1000, 1200]",
            [0.1, 0.2, 0.5, 0.8],
            {"image_width": 2000, "image_height": 1500},
            1.0,
        ),  # too big for 0..1000
        (
            "[64, 48, 320, 240]",
            [0.1, 0.1, 0.5, 0.5],
            {"image_width": 640, "image_height": 480},
            1.0,
        ),  # small image: pixels likelier
        (
            "[64, 48, 320, 240]",
            [0.1, 0.1, 0.5, 0.5],
            {"image_width": 640, "image_height": 480, "pred_scale": "pixels"},
            1.0,
        ),
        (
            "[100, 100, 400, 400]",
            [0.1, 0.1, 0.4, 0.4],
            {"image_width": 640, "image_height": 480, "pred_scale": 1000},
            1.0,
        ),
        (
            "[100, 100, 500, 500]",
            [64, 48, 320, 240],
            {"image_width": 640, "image_height": 480},
            1.0,
        ),  # 500 > 480: 0..1000
        (
            "[0.1, 0.1, 0.5, 0.5]",
            [64, 48, 320, 240],
            {"image_width": 640, "image_height": 480},
            1.0,
        ),  # normalized vs pixel gold
        # -- explicit scales --
        ("[0.1, 0.1, 0.5, 0.5]", [100, 100, 500, 500], {"gold_scale": 1000}, 1.0),
        ("[10, 10, 50, 50]", [0.1, 0.1, 0.5, 0.5], {"pred_scale": 100}, 1.0),
        # -- same convention, no size needed --
        ("[10, 10, 50, 50]", [10, 10, 50, 50], {}, 1.0),
        # -- pixels without the size cannot be converted: 0, not a crash --
        ("[0.1, 0.1, 0.5, 0.5]", [64, 48, 320, 240], {}, 0.0),
        # -- thresholded IoU --
        ("[0, 0, 10, 5]", SQUARE, {"iou_threshold": 0.5}, 1.0),
        ("[5, 5, 15, 15]", SQUARE, {"iou_threshold": 0.5}, 0.0),
    ],
)
def test_options(
    response: str, reference: Reference, options: dict[str, object], expected: float
) -> None:
    assert score(tagged(response), reference, **options)[1] == pytest.approx(expected)


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
