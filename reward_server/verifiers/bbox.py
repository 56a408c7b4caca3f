"""`bbox`: intersection over union between the predicted and the reference region.

Contract
- `extract` takes the answer block and finds the FIRST region in it, returning it as
  canonical JSON: `[x1, y1, x2, y2]` for a box, `[[x, y], ...]` for a polygon. Understood:
  `[x1, y1, x2, y2]`, `(x1, y1, x2, y2)`, nested lists `[[x1, y1, x2, y2]]`, corner pairs
  `(x1,y1),(x2,y2)` and `[[x1,y1],[x2,y2]]`, `<box>(x1,y1),(x2,y2)</box>`,
  `<box>x1 y1 x2 y2</box>`, Qwen's `<|box_start|>...<|box_end|>`, JSON such as
  `{"bbox_2d": [...]}` or `[{"bbox_2d": [...], "label": ...}]`, key-value corners in any
  order, as text or JSON (`xmin=5, ymin=8, xmax=40, ymax=60`, `x1: 5, ...`,
  `left/top/right/bottom`, `{"x1": 5, ...}`, or a corner with `w`/`width` and
  `h`/`height`), polygons (three or more points), and four bare numbers. No region: the
  answer text comes back and `compare` scores 0.
- `compare` reads every reference region (a box, a list of boxes, a polygon, or strings
  holding them) and returns the best IoU over them. Areas are continuous (no +1 pixel
  convention) and computed with shapely, which also handles polygons. Zero-area,
  inverted, non-finite or malformed predictions score 0 with a message; they never raise.

Coordinate conventions. Boxes are `xyxy` unless `box_format` (reference) or
`pred_box_format` (prediction) says `xywh`. Each side has a scale: a number `s` means
coordinates run over 0..s on both axes (1 for normalized, 1000 for Qwen2-VL-style
models), `"pixels"` means image pixels (converted with `image_width`/`image_height`), and
`"auto"` (default) guesses:
- reference: all coordinates <= 1 -> 1; otherwise pixels, or 1000 when the image size is
  known and the box does not fit in it;
- prediction: all coordinates <= 1 -> 1; with the image size known, whichever of 1000 and
  pixels the box fits in, and when it fits both, the likelier: pixels for images smaller
  than 1000 x 1000 pixels in area, else 1000; without the size, pixels when the reference
  is in pixels, else 1000 (up to 1000) or pixels.
When both sides end up in the same convention they are compared as given; otherwise both
are converted to 0..1, which needs the image size for pixels.

Why not the recipe's rule: a zero-area box raises ZeroDivisionError there, and pixel or
0..1000 predictions against its 0..1 golds score 0 (RECIPE.md).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from reward_server.types import ItemContext, Reference, Verdict
from reward_server.verifiers.base import BaseOptions, extract_tagged, option

BoxFormat = Literal["xyxy", "xywh"]
Scale = float | Literal["auto", "pixels"]
Point = tuple[float, float]


@dataclass(frozen=True)
class Region:
    """A box (`is_box`: its two corners, x1 y1 then x2 y2) or a polygon (three+ points)."""

    points: tuple[Point, ...]
    is_box: bool

    @classmethod
    def box(cls, x1: float, y1: float, x2: float, y2: float) -> Region:
        return cls(((x1, y1), (x2, y2)), True)

    @classmethod
    def of_numbers(cls, numbers: list[float]) -> Region | None:
        """Four numbers are a box, six or more (an even count) a polygon."""
        if len(numbers) == 4:
            return cls.box(*numbers)
        if len(numbers) >= 6 and len(numbers) % 2 == 0:
            return cls(tuple(zip(numbers[0::2], numbers[1::2], strict=True)), False)
        return None

    def map(self, fx: Callable[[float], float], fy: Callable[[float], float]) -> Region:
        return Region(tuple((fx(x), fy(y)) for x, y in self.points), self.is_box)

    def to_json(self) -> str:
        def num(x: float) -> float | int:
            return int(x) if math.isfinite(x) and x == int(x) else x

        if self.is_box:
            return json.dumps([num(c) for point in self.points for c in point])
        return json.dumps([[num(x), num(y)] for x, y in self.points])


@dataclass(frozen=True)
class Options(BaseOptions):
    box_format: Literal["xyxy", "xywh"] = option(
        "xyxy", "Layout of the reference boxes: xyxy (corners) or xywh (corner, width, height)."
    )
    pred_box_format: Literal["xyxy", "xywh"] = option(
        "xyxy", "Layout of the predicted box: xyxy or xywh."
    )
    gold_scale: float | Literal["auto", "pixels"] = option(
        "auto",
        "Reference coordinates run over 0..N (1 normalized, 1000), 'pixels', or 'auto'.",
        gt=0.0, le=1e9,
    )
    pred_scale: float | Literal["auto", "pixels"] = option(
        "auto",
        "Predicted coordinates run over 0..N (1 normalized, 1000), 'pixels', or 'auto'.",
        gt=0.0, le=1e9,
    )
    image_width: float | None = option(
        None, "Image width in pixels, to convert pixel coordinates.", gt=0.0, le=1e9
    )
    image_height: float | None = option(
        None, "Image height in pixels, to convert pixel coordinates.", gt=0.0, le=1e9
    )
    iou_threshold: float | None = option(
        None, "If set, the score is 1 when IoU >= this value, else 0 (e.g. 0.5); None: the IoU.",
        ge=0.0,
        le=1.0,
    )


# ---------------------------------------------------------------------------------------
# Reading regions from text and JSON
# ---------------------------------------------------------------------------------------
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUM_RE = re.compile(_NUM)
# `<box>`, `<|box_start|>` and their closing tags, searched one after the other so that
# many unclosed openings cost linear time.
_BOX_OPEN_RE = re.compile(r"<\|?box(?:_start)?\|?>", re.IGNORECASE)
_BOX_CLOSE_RE = re.compile(r"<\|?/?box(?:_end)?\|?>", re.IGNORECASE)
# Four numbers in one bracket: [a, b, c, d] or (a, b, c, d), commas or spaces.
_FOUR_RE = re.compile(
    rf"[\[(]\s*({_NUM})(?:\s*,\s*|\s+)({_NUM})(?:\s*,\s*|\s+)({_NUM})"
    rf"(?:\s*,\s*|\s+)({_NUM})\s*[\])]"
)
# A run of bracketed points: (x1,y1),(x2,y2) or [[x,y],[x,y],[x,y]].
_POINT = rf"[\[(]\s*{_NUM}\s*,\s*{_NUM}\s*[\])]"
_POINTS_RE = re.compile(rf"{_POINT}(?:(?:\s*,)?\s*{_POINT})+")
_KEYS = ("bbox_2d", "bbox", "box", "bounding_box", "box_2d", "polygon", "points", "coordinates")


# Key-value corners: each key names one role; the first value stated for a role counts.
_ROLES = {
    "xmin": "x1", "x_min": "x1", "x1": "x1", "x0": "x1", "left": "x1",
    "ymin": "y1", "y_min": "y1", "y1": "y1", "y0": "y1", "top": "y1",
    "xmax": "x2", "x_max": "x2", "x2": "x2", "right": "x2",
    "ymax": "y2", "y_max": "y2", "y2": "y2", "bottom": "y2",
    "x": "x", "y": "y", "w": "w", "width": "w", "h": "h", "height": "h",
}
_KEY_VALUE_RE = re.compile(
    r"(?<![\w-])(" + "|".join(sorted(_ROLES, key=len, reverse=True)) + r")(?![\w-])"
    rf"\s*[\"']?\s*[:=]\s*[\"']?\s*({_NUM})",
    re.IGNORECASE,
)


def _region_of_roles(roles: dict[str, float]) -> Region | None:
    """A box from corner roles (x1 y1 x2 y2) or from a corner and a size (x y w h)."""
    if all(k in roles for k in ("x1", "y1", "x2", "y2")):
        return Region.box(roles["x1"], roles["y1"], roles["x2"], roles["y2"])
    x, y = roles.get("x1", roles.get("x")), roles.get("y1", roles.get("y"))
    if x is not None and y is not None and "w" in roles and "h" in roles:
        return Region.box(x, y, x + roles["w"], y + roles["h"])
    return None


def _keyed_region(text: str) -> Region | None:
    roles: dict[str, float] = {}
    for match in _KEY_VALUE_RE.finditer(text):
        roles.setdefault(_ROLES[match.group(1).lower()], float(match.group(2)))
    return _region_of_roles(roles)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUM_RE.fullmatch(value.strip()):
        return float(value)
    return None


def regions_from_value(value: Any) -> list[Region]:
    """Every region in a JSON-like value (see the module docstring for the shapes)."""
    if isinstance(value, str):
        return regions_from_text(value)
    if isinstance(value, dict):
        for key in _KEYS:
            if key in value:
                return regions_from_value(value[key])
        roles = {_ROLES[str(k).lower()]: _number(v) for k, v in value.items()
                 if str(k).lower() in _ROLES}
        region = _region_of_roles({k: v for k, v in roles.items() if v is not None})
        return [region] if region else []
    if not isinstance(value, list | tuple) or not value:
        return []
    numbers = [_number(v) for v in value]
    if all(n is not None for n in numbers):
        region = Region.of_numbers([n for n in numbers if n is not None])
        return [region] if region else []
    points = [[_number(c) for c in v] if isinstance(v, list | tuple) else [] for v in value]
    if all(len(p) == 2 and None not in p for p in points):
        flat = [n for p in points for n in p if n is not None]
        # Two points are the corners of a box; more are a polygon.
        region = Region.box(*flat) if len(points) == 2 else Region.of_numbers(flat)
        return [region] if region else []
    return [region for item in value for region in regions_from_value(item)]


def _strip_fence(text: str) -> str:
    """The code inside a Markdown fence ```json ... ```, or the text itself."""
    if text.startswith("```"):
        text = text.partition("\n")[2] if "\n" in text else text[3:]
    return text.removesuffix("```").strip()


def _box_tag_content(text: str) -> str | None:
    opening = _BOX_OPEN_RE.search(text)
    if opening is None:
        return None
    closing = _BOX_CLOSE_RE.search(text, opening.end())
    return text[opening.end() : closing.start()] if closing else None


def regions_from_text(text: str) -> list[Region]:
    """The regions written in an answer, first one first."""
    text = _strip_fence(text.strip())
    if text[:1] in "[{":
        try:
            found = regions_from_value(json.loads(text))
        except (ValueError, RecursionError):
            found = []
        if found:
            return found
    tagged = _box_tag_content(text)
    if tagged is not None:
        text = tagged
    keyed = _keyed_region(text)
    if keyed is not None:
        return [keyed]
    four, points = _FOUR_RE.search(text), _POINTS_RE.search(text)
    if four and (points is None or four.start() <= points.start()):
        return [Region.box(*(float(n) for n in four.groups()))]
    if points:
        region = Region.of_numbers([float(n) for n in _NUM_RE.findall(points.group(0))])
        return [region] if region else []
    numbers = [float(n) for n in _NUM_RE.findall(text)]
    region = Region.of_numbers(numbers) if len(numbers) == 4 or tagged else None
    return [region] if region else []


def extract(response: str, options: Options, context: ItemContext) -> str | None:
    answer = extract_tagged(response, options, context)
    if answer is None:
        return None
    regions = regions_from_text(answer)
    return regions[0].to_json() if regions else " ".join(answer.split()) or None


# ---------------------------------------------------------------------------------------
# Conventions and IoU
# ---------------------------------------------------------------------------------------
def _to_xyxy(region: Region, box_format: BoxFormat) -> Region:
    if region.is_box and box_format == "xywh":
        (x, y), (w, h) = region.points
        return Region.box(x, y, x + w, y + h)
    return region


def _fits(regions: list[Region], width: float, height: float) -> bool:
    slack = 1.02  # models round up at the far edge
    return all(x <= width * slack and y <= height * slack for r in regions for x, y in r.points)


def _largest(regions: list[Region]) -> float:
    return max(abs(c) for r in regions for p in r.points for c in p)


def _gold_unit(scale: Scale, golds: list[Region], size: tuple[float, float] | None) -> Scale:
    if scale != "auto":
        return scale
    if _largest(golds) <= 1.0:
        return 1.0
    if size and not _fits(golds, *size) and _largest(golds) <= 1000:
        return 1000.0
    return "pixels"


def _pred_unit(
    scale: Scale, pred: Region, gold_unit: Scale, size: tuple[float, float] | None
) -> Scale:
    if scale != "auto":
        return scale
    largest = _largest([pred])
    if largest <= 1.0:
        return 1.0
    if size:
        fits_pixels, fits_1000 = _fits([pred], *size), largest <= 1000
        if fits_pixels and fits_1000:
            # Both readings fit: take the likelier one. A box of a pixel model always fits
            # the image, one of a 0..1000 model fits a smaller image with probability
            # about (W / 1000) * (H / 1000), and the other way round for larger images.
            return "pixels" if size[0] * size[1] < 1000 * 1000 else 1000.0
        return 1000.0 if fits_1000 else "pixels"
    if gold_unit == "pixels":
        return "pixels"
    return 1000.0 if largest <= 1000 else "pixels"


def _normalized(region: Region, unit: Scale, size: tuple[float, float] | None) -> Region | None:
    """The region in 0..1 coordinates; None when pixels cannot be converted."""
    if unit == "pixels":
        if size is None:
            return None
        sx, sy = size
    else:
        sx = sy = float(unit)
    return region.map(lambda x: x / sx, lambda y: y / sy)


def _shape(region: Region) -> Any:
    """A shapely geometry with positive area, or None."""
    from shapely import make_valid
    from shapely.geometry import Polygon as ShapelyPolygon
    from shapely.geometry import box

    if any(not math.isfinite(c) for p in region.points for c in p):
        return None
    if region.is_box:
        (x1, y1), (x2, y2) = region.points
        if x2 <= x1 or y2 <= y1:
            return None
        return box(x1, y1, x2, y2)
    geometry = make_valid(ShapelyPolygon(region.points))
    return geometry if geometry.area > 0 else None


def iou(a: Region, b: Region) -> float:
    """Intersection over union of two regions; 0 when either has no area."""
    shape_a, shape_b = _shape(a), _shape(b)
    if shape_a is None or shape_b is None:
        return 0.0
    union = shape_a.union(shape_b).area
    return float(shape_a.intersection(shape_b).area / union) if union > 0 else 0.0


def compare(
    extracted: str, reference: Reference, options: Options, context: ItemContext
) -> Verdict:
    golds = [_to_xyxy(r, options.box_format) for r in regions_from_value(reference)]
    if not golds:
        return Verdict(
            0.0,
            {"iou": 0.0},
            status="error",
            message=f"reference {reference!r} holds no box or polygon",
        )
    found = regions_from_text(extracted)
    if not found:
        return Verdict(0.0, {"iou": 0.0}, message="the answer holds no box")
    pred = _to_xyxy(found[0], options.pred_box_format)
    if _shape(pred) is None:
        return Verdict(0.0, {"iou": 0.0}, message="the predicted box has no area (or is inverted)")
    size = None
    if options.image_width and options.image_height:
        size = (float(options.image_width), float(options.image_height))
    gold_unit = _gold_unit(options.gold_scale, golds, size)
    pred_unit = _pred_unit(options.pred_scale, pred, gold_unit, size)
    if pred_unit != gold_unit:
        pred_n = _normalized(pred, pred_unit, size)
        golds_n = [_normalized(g, gold_unit, size) for g in golds]
        if pred_n is None or None in golds_n:
            return Verdict(
                0.0,
                {"iou": 0.0},
                message=(
                    f"prediction ({pred_unit}) and reference ({gold_unit}) use different "
                    "coordinates; set image_width and image_height to convert pixels"
                ),
            )
        pred, golds = pred_n, [g for g in golds_n if g is not None]
    best = max(iou(pred, gold) for gold in golds)
    score = best
    if options.iou_threshold is not None:
        score = 1.0 if best >= options.iou_threshold else 0.0
    return Verdict(score, {"iou": best})
