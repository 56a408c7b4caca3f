"""`svg-code`: render the model's SVG and the reference, and compare what a person would see.

Extraction (`extract`, linear-time string work in the server process), as in the recipe:
the last `<answer>` block if it contains `<svg`, else the last top-level `<svg ...>...</svg>`
block of the response (or a trailing `<svg` block cut off by the token limit), else the
last fenced code block.

Comparison (`compare`, in a worker process):
1. Repair a truncated SVG: drop a partial last tag, comment or entity, then close the
   elements left open, innermost first.
2. Harden: inputs over `max_chars` are refused; the DOCTYPE (where XML entities live:
   XXE, billion laughs) is removed, and cairosvg parses with defusedxml forbidding
   entities anyway; numeric `width`/`height` attributes above `MAX_DIMENSION` are clamped;
   `<use>` chains that would draw over `MAX_USE_EXPANSION` elements are refused;
   every URL cairosvg asks for goes to `_DataOnlyFetcher`, which serves small inline
   `data:` images and refuses everything else (`file:`, `http:`, relative paths) without
   touching disk or network. CPU time is bounded by the engine killing the worker.
3. Render both with cairosvg at `size` x `size` on `background` (the recipe: 336 x 336 on
   white) straight into a pixel buffer.
4. Score (all components reported):
       visual = foreground-aware SSIM x soft foreground IoU   (`image_similarity`)
       score  = visual x (w_v + w_t x token_jaccard + w_g x tag_jaccard) / (w_v + w_t + w_g)
   with the recipe's weights w_v = 0.5, w_t = w_g = 0.25 and its token and tag-name
   Jaccard (`code_overlap`). The recipe ADDS the code terms to plain SSIM, so an empty
   `<svg>` earns 0.77 against a red circle; here they count only in proportion to how
   much of the picture is right, so a blank or truncated render scores 0 and a faithful
   one keeps the recipe's emphasis on matching code.
An SVG that does not parse or render scores 0 with status `ok` (the model's fault); one
over `max_chars` or over the `<use>` expansion guard is status `rejected` (reward 0,
scored as a wrong answer); a reference that does not render is status `error`.
"""

from __future__ import annotations

import base64
import io
import re
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reward_server.code_overlap import tag_jaccard, token_jaccard
from reward_server.extraction import last_fenced_block, last_tag_content
from reward_server.types import ItemContext, Reference, Verdict
from reward_server.verifiers.base import (
    BaseOptions,
    best_over_golds,
    cached_reference_render,
    golds_of,
    option,
)

if TYPE_CHECKING:
    import numpy as np

# Numeric width/height attributes above this are clamped: a 100000 px nested <svg>, pattern
# or image must not size anything big. Real drawings stay far below it.
MAX_DIMENSION = 10_000
# An inline raster image larger than this (pixels) is not decoded (decompression bombs).
MAX_INLINE_IMAGE_PIXELS = 4096 * 4096
# Most elements drawn through <use> references, counted with nesting before rendering.
# cairosvg's own cap (100,000) takes about a minute to reach; 1,000 takes about a second.
MAX_USE_EXPANSION = 2_000
# The recipe renders both SVGs at 336 x 336 pixels.
RENDER_SIZE = 336


@dataclass(frozen=True)
class Options(BaseOptions):
    strict_tags: bool = option(
        False,
        "True: only an <answer> block holding <svg counts. False (the recipe): without one, "
        "a raw <svg> block or the last fenced code block of the response is taken.",
    )
    size: int = option(
        RENDER_SIZE,
        f"Render width and height in pixels (the recipe renders {RENDER_SIZE} x {RENDER_SIZE}).",
        ge=8, le=2048,
    )
    background: str = option("white", "Colour painted under both renders (the recipe: white).")
    visual_weight: float = option(
        0.5, "Weight of the visual term (the recipe's SSIM weight).", gt=0.0, le=100.0
    )
    token_weight: float = option(
        0.25, "Weight of the token Jaccard term, counted in proportion to `visual`.", ge=0.0,
        le=100.0
    )
    tag_weight: float = option(
        0.25, "Weight of the tag-name Jaccard term, counted in proportion to `visual`.", ge=0.0,
        le=100.0
    )
    max_chars: int = option(
        300_000, "Longer SVG sources are refused before parsing: status rejected.", ge=1,
        le=10_000_000
    )

    def __post_init__(self) -> None:
        if self.size < 8 or self.size > 2048:
            raise ValueError(f"size must be between 8 and 2048 pixels, got {self.size}")
        weights = (self.visual_weight, self.token_weight, self.tag_weight)
        if min(weights) < 0 or self.visual_weight <= 0:
            raise ValueError("weights must be >= 0 and visual_weight > 0")


# ---------------------------------------------------------------------------------------
# Extraction (server process: linear-time scans only)
# ---------------------------------------------------------------------------------------
_SVG_TAG_RE = re.compile(r"<(/?)svg\b", re.IGNORECASE)
_HAS_SVG_RE = re.compile(r"<svg\b", re.IGNORECASE)


def extract(response: str, options: Options, context: ItemContext) -> str | None:
    """The SVG source the model answered with, or None."""
    del context
    answer = last_tag_content(response, "answer")
    if answer is not None and _HAS_SVG_RE.search(answer):
        return find_svg_block(answer)
    if options.strict_tags:
        return None
    return find_svg_block(response) or last_fenced_block(response)


def find_svg_block(text: str) -> str | None:
    """The last top-level `<svg>...</svg>` element, or a trailing unclosed one (truncated).

    One pass over the `<svg`/`</svg` tags with a depth counter; the end of each tag is
    found with a forward-only cursor, so the scan stays linear on hostile input.
    """
    depth = 0
    open_start: int | None = None
    complete: tuple[int, int] | None = None
    tag_end = -1
    for match in _SVG_TAG_RE.finditer(text):
        if match.start() < tag_end:
            continue  # inside the previous tag (e.g. an attribute value)
        tag_end = text.find(">", match.end())
        if tag_end < 0:  # the tag itself is cut off
            if depth == 0 and not match.group(1):
                open_start = match.start()
            break
        if match.group(1):  # </svg>
            if depth > 0:
                depth -= 1
                if depth == 0 and open_start is not None:
                    complete, open_start = (open_start, tag_end + 1), None
        elif text[tag_end - 1] == "/":  # <svg ... />
            if depth == 0:
                complete = (match.start(), tag_end + 1)
        else:
            if depth == 0:
                open_start = match.start()
            depth += 1
    if open_start is not None and (complete is None or open_start > complete[0]):
        return text[open_start:].strip()
    if complete is not None:
        return text[complete[0] : complete[1]]
    return None


# ---------------------------------------------------------------------------------------
# Repair and hardening (worker process)
# ---------------------------------------------------------------------------------------
_MARKUP_RE = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<[?!][^>]*>|<(/?)([A-Za-z_][\w:.-]*)[^>]*?(/?)>",
    re.DOTALL,
)
_DOCTYPE_RE = re.compile(r"<!DOCTYPE\b", re.IGNORECASE)
_DIMENSION_RE = re.compile(r"""\b(width|height)(\s*=\s*["']\s*)([0-9.]+(?:[eE][+-]?\d+)?)""")


def repair_svg(source: str) -> str:
    """Make a truncated SVG well-formed: cut a partial tail, close what is open.

    A closing tag that skips open elements closes them first (`<g><rect></g>` gets
    `</rect>`); a closing tag with no open element of its name is dropped.
    """
    source = source.strip()
    for opener, closer in (("<!--", "-->"), ("<![CDATA[", "]]>")):
        last_closed = source.rfind(closer)
        cut = source.find(opener, last_closed + len(closer) if last_closed >= 0 else 0)
        if cut >= 0:  # the first opener after the last closer never closes
            source = source[:cut]
    partial = source.find("<", source.rfind(">") + 1)
    if partial >= 0:  # no tag can end after the last ">": cut from the first "<" there
        source = source[:partial]
    amp = source.rfind("&")
    if amp >= 0 and ";" not in source[amp:] and len(source) - amp < 12:
        source = source[:amp]  # an entity cut in the middle: "&am"

    pieces: list[str] = []
    stack: list[str] = []
    open_counts: Counter[str] = Counter()
    done = 0
    for match in _MARKUP_RE.finditer(source):
        name = match.group(2)
        if name is None or match.group(3):  # comment, PI, declaration or <x/>
            continue
        if not match.group(1):
            stack.append(name)
            open_counts[name] += 1
            continue
        pieces.append(source[done : match.start()])
        done = match.end()
        if not open_counts[name]:
            continue  # a stray closing tag
        while stack:
            top = stack.pop()
            open_counts[top] -= 1
            pieces.append(f"</{top}>")
            if top == name:
                break
    pieces.append(source[done:])
    pieces.extend(f"</{name}>" for name in reversed(stack))
    return "".join(pieces)


def harden_svg(source: str) -> str:
    """Remove the DOCTYPE (entities) and clamp absurd width/height attributes."""
    start = _DOCTYPE_RE.search(source)
    if start is not None:
        bracket = source.find("[", start.end())
        close = source.find(">", start.end())
        if 0 <= bracket < close:  # internal subset: ends with "]>"
            close = source.find("]>", bracket)
            close = close + 1 if close >= 0 else len(source) - 1
        source = source[: start.start()] + source[close + 1 :]

    def clamp(match: re.Match[str]) -> str:
        try:
            value = float(match.group(3))
        except ValueError:
            return match.group(0)
        if value <= MAX_DIMENSION:
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}{MAX_DIMENSION}"

    return _DIMENSION_RE.sub(clamp, source)


_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


def use_expansion(source: str) -> int:
    """How many elements `<use>` references would draw, nesting included ("use bombs").

    Conservative: every `<use>` of the document counts, those inside `<defs>` too. Counting
    stops at `MAX_USE_EXPANSION + 1`; a reference cycle or a document too deep
    to walk counts as over the limit. 0 when the source holds no `<use`.
    """
    if "<use" not in source:
        return 0
    from defusedxml import ElementTree

    over = MAX_USE_EXPANSION + 1
    try:
        root = ElementTree.fromstring(source)
    except (ElementTree.ParseError, ValueError):  # defusedxml's refusals are ValueErrors
        return 0  # the renderer refuses it with its own message
    by_id = {element.get("id"): element for element in root.iter() if element.get("id")}
    memo: dict[int, int] = {}
    walking: set[int] = set()

    def drawn(element: Any) -> int:
        """Elements drawn for `element`'s subtree, references expanded."""
        key = id(element)
        if key in memo:
            return memo[key]
        if key in walking:
            return over  # a cycle
        walking.add(key)
        total = 1 + sum(drawn(child) for child in element)
        if element.tag.rsplit("}", 1)[-1] == "use":
            href = element.get("href") or element.get(_XLINK_HREF) or ""
            target = by_id.get(href[1:]) if href.startswith("#") else None
            if target is not None:
                total += drawn(target)
        walking.discard(key)
        memo[key] = min(total, over)
        return memo[key]

    try:
        uses = [element for element in root.iter() if element.tag.rsplit("}", 1)[-1] == "use"]
        return min(over, sum(drawn(use) for use in uses))
    except RecursionError:
        return over


class _DataOnlyFetcher:
    """cairosvg's `url_fetcher`: inline `data:` resources only; nothing from disk or network.

    Refused URLs are remembered in `refused` (for the verdict message and the tests).
    """

    def __init__(self) -> None:
        self.refused: list[str] = []

    def __call__(self, url: str, resource_type: str) -> bytes:
        if not url.startswith("data:"):
            self.refused.append(url[:200])
            return self._empty(resource_type)
        header, _, payload = url[5:].partition(",")
        try:
            if header.endswith(";base64"):
                data = base64.b64decode(urllib.parse.unquote(payload), validate=False)
            else:
                data = urllib.parse.unquote_to_bytes(payload)
        except ValueError:
            self.refused.append(url[:200])
            return self._empty(resource_type)
        if resource_type.startswith("image/") and not _small_enough(data):
            self.refused.append(url[:200])
            return b""
        return data

    @staticmethod
    def _empty(resource_type: str) -> bytes:
        # An SVG (`<use>` of another file) must still parse; images under 5 bytes are skipped.
        return (
            b'<svg xmlns="http://www.w3.org/2000/svg"/>'
            if resource_type == "image/svg+xml"
            else b""
        )


def _small_enough(data: bytes) -> bool:
    if data.lstrip().startswith(b"<"):
        return True  # inline SVG: bounded by max_chars and rendered with the same fetcher
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            return image.width * image.height <= MAX_INLINE_IMAGE_PIXELS
    except (UnidentifiedImageError, OSError, ValueError):
        return False


# ---------------------------------------------------------------------------------------
# Rendering and scoring (worker process)
# ---------------------------------------------------------------------------------------
class RenderError(ValueError):
    """An SVG that could not be parsed or rendered."""


class RenderRefused(RenderError):
    """An SVG that a guard refuses to render (it would draw too many elements)."""


def render_svg(
    source: str,
    size: int = RENDER_SIZE,
    background: str = "white",
    fetcher: _DataOnlyFetcher | None = None,
) -> np.ndarray:
    """Pixels (size x size x 3, uint8) of the hardened, repaired SVG; RenderError if none."""
    import numpy as np
    from cairosvg.parser import Tree
    from cairosvg.surface import PNGSurface

    fetcher = fetcher or _DataOnlyFetcher()
    text = harden_svg(repair_svg(source))
    if use_expansion(text) > MAX_USE_EXPANSION:
        raise RenderRefused(f"<use> references draw more than {MAX_USE_EXPANSION} elements")
    try:
        tree = Tree(bytestring=text.encode("utf-8"), url_fetcher=fetcher, unsafe=False)
        surface = PNGSurface(
            tree, None, 96, output_width=size, output_height=size, background_color=background
        )
        surface.cairo.flush()
        stride = surface.cairo.get_stride()
        buffer = np.frombuffer(surface.cairo.get_data(), dtype=np.uint8)
        height, width = surface.height, surface.width
    except Exception as exc:  # noqa: BLE001 - any parser/renderer failure is a bad SVG
        raise RenderError(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
    # cairo's ARGB32 is B, G, R, A in memory on little-endian machines.
    pixels = buffer.reshape(height, stride // 4, 4)[:, :width, 2::-1].copy()
    if (height, width) != (size, size):
        raise RenderError(f"rendered {width} x {height}, expected {size} x {size}")
    return pixels


@cached_reference_render(maxsize=64, pixels=lambda pixels: pixels)
def _render_reference(source: str, size: int, background: str) -> np.ndarray:
    return render_svg(source, size, background)


def warm_up() -> None:
    """Run at a worker's start: import cairosvg and the image comparison, score one pair."""
    drawing = ('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8">'
               '<rect width="4" height="4"/></svg>')
    compare(drawing, drawing, Options(), ItemContext())
    _render_reference.cache_clear()


def compare(
    extracted: str, reference: Reference, options: Options, context: ItemContext
) -> Verdict:
    """Score the extracted SVG against the reference SVG(s); the best reference counts."""
    del context
    golds = [svg for svg in (find_svg_block(str(g)) for g in golds_of(reference)) if svg]
    if not golds:
        return Verdict(0.0, status="error", message="the reference holds no <svg> element")
    if len(extracted) > options.max_chars:
        return Verdict(0.0, status="rejected",
                       message=f"SVG of {len(extracted)} chars is over max_chars")
    if not _HAS_SVG_RE.search(extracted):
        return Verdict(0.0, message="the answer holds no <svg> element")
    try:
        candidate = render_svg(extracted, options.size, options.background)
    except RenderRefused as exc:
        return Verdict(0.0, {"visual": 0.0}, status="rejected", message=str(exc))
    except RenderError as exc:
        return Verdict(0.0, {"visual": 0.0}, message=f"the answer's SVG does not render: {exc}")

    def against(gold: str) -> Verdict:
        if len(gold) > options.max_chars:
            return Verdict(0.0, status="error", message="the reference is over max_chars")
        try:
            gold_pixels = _render_reference(gold, options.size, options.background)
        except RenderError as exc:
            return Verdict(0.0, status="error", message=f"the reference does not render: {exc}")
        return _score(extracted, gold, candidate, gold_pixels, options)

    best = best_over_golds(golds, against)
    assert best is not None  # golds is not empty
    return best


def _score(
    code: str, gold: str, pixels: np.ndarray, gold_pixels: np.ndarray, options: Options
) -> Verdict:
    from reward_server.image_similarity import visual_similarity

    components = visual_similarity(gold_pixels, pixels)
    components["token_jaccard"] = token_jaccard(code, gold)
    components["tag_jaccard"] = tag_jaccard(code, gold)
    total = options.visual_weight + options.token_weight + options.tag_weight
    code_terms = (
        options.visual_weight
        + options.token_weight * components["token_jaccard"]
        + options.tag_weight * components["tag_jaccard"]
    )
    score = components["visual"] * code_terms / total
    return Verdict(min(1.0, max(0.0, score)), components)
