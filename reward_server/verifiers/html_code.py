"""`html-code`: render the model's web page and the reference, and compare what a reader sees.

The recipe (RECIPE.md) scores WebCode2M screenshot-to-HTML answers by code overlap alone,
0.6 x token Jaccard + 0.4 x tag-name Jaccard, without rendering: a bare tag skeleton with
no text earns 0.82 there. Here both pages are rendered in headless Chromium
(`reward_server.browser`) and scored in the spirit of Design2Code (Si et al. 2024, which
compares rendered screenshots and the text they show):

    visual = foreground-aware SSIM x soft foreground IoU of the two full-page screenshots
             (`image_similarity.visual_similarity`; rendered at 1280 CSS px wide, captured
             at scale 0.25, padded to the same height by repeating the last row)
    text   = rapidfuzz `fuzz.ratio` / 100 (normalized Indel similarity) of the visible text
             (`innerText` of the body, whitespace collapsed; 1.0 when neither page shows
             any text, 0.0 when only one does)
    code   = 0.6 x token Jaccard + 0.4 x tag Jaccard (`code_overlap`: the recipe's reward)
    score  = (0.45 x visual + 0.45 x text + 0.1 x code) / (0.45 + 0.45 + 0.1)

The weights are options (`visual_weight`, `text_weight`, `code_weight`). Design2Code
weighs its visual and text-content measures equally and has no code term; the recipe's
code term is kept, small, because it is the gameable one: a bare tag skeleton shows
nothing, so it gets visual = text = 0 and at most 0.1 x code. Every term is reported as a
component.

Extraction (`extract`, linear-time string work in the server process): the content of the
last `<answer>` block, else the last `<!DOCTYPE html>`/`<html>` document of the response
(from its start to the following `</html>`, or to the end when cut off), else the last
fenced code block. Inside an `<answer>` block a fenced or `<html>` document is unwrapped
the same way.

Outcomes: an answer over `max_html_chars` is status `rejected` (reward 0, scored as a
wrong answer); one whose page crashes the renderer scores 0 with status `ok` (the model's
fault); one whose page does not finish loading or capturing within
`render_timeout_s` is status `timeout`; a reference that does not render is `error`.
Rendering is sandboxed as `reward_server.browser` describes (JavaScript off unless
`javascript=true`, every request but `data:` aborted; a warm page per worker for pages
without scripts, a fresh context for each scripted one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

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

    from reward_server.browser import Rendering, RenderSettings

# The recipe's html-code reward, kept as the code term.
_RECIPE_TOKEN_WEIGHT = 0.6
_RECIPE_TAG_WEIGHT = 0.4


@dataclass(frozen=True)
class Options(BaseOptions):
    strict_tags: bool = option(
        False,
        "True: only the <answer> block counts. False (the recipe): without one, the last "
        "<!DOCTYPE html>/<html> document or fenced code block of the response is taken.",
    )
    viewport_width: int = option(
        1280, "Viewport width in CSS pixels for both renders.", ge=16, le=4096
    )
    viewport_height: int = option(
        960, "Viewport height in CSS pixels (shortest capture).", ge=16, le=4096
    )
    max_page_height: int = option(
        3840, "Full-page captures are cut off below this many CSS pixels.", ge=16, le=32768
    )
    scale: float = option(
        0.25, "Screenshot pixels per CSS pixel: the comparison's downscale (1280 -> 320).",
        ge=0.05,
        le=2.0,
    )
    javascript: bool = option(
        False, "Run the pages' JavaScript (off by default: untrusted code)."
    )
    render_timeout_s: float = option(
        2.0, "Limit for loading a page and, separately, for capturing it; beyond: `timeout`.",
        gt=0.0,
        le=600.0,
    )
    visual_weight: float = option(0.45, "Weight of the screenshot similarity.", ge=0.0, le=100.0)
    text_weight: float = option(0.45, "Weight of the visible-text similarity.", ge=0.0, le=100.0)
    code_weight: float = option(
        0.1, "Weight of the recipe's code overlap (0.6 token + 0.4 tag Jaccard).", ge=0.0, le=100.0
    )
    max_html_chars: int = option(
        1_000_000, "Longer HTML is not rendered: rejected for an answer, error for a reference.",
        ge=1,
        le=10_000_000,
    )
    max_text_chars: int = option(
        20_000, "Visible text beyond this many characters is not compared.", ge=1, le=1_000_000
    )

    def __post_init__(self) -> None:
        weights = (self.visual_weight, self.text_weight, self.code_weight)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("weights must be >= 0 with a positive sum")
        if self.max_html_chars < 1 or self.max_text_chars < 1:
            raise ValueError("max_html_chars and max_text_chars must be positive")
        self.render_settings()  # its own checks say how to fix a bad viewport or timeout

    def render_settings(self) -> RenderSettings:
        from reward_server.browser import RenderSettings

        return RenderSettings(
            viewport_width=self.viewport_width,
            viewport_height=self.viewport_height,
            max_page_height=self.max_page_height,
            scale=self.scale,
            javascript=self.javascript,
            navigation_timeout_s=self.render_timeout_s,
            screenshot_timeout_s=self.render_timeout_s,
        )


# ---------------------------------------------------------------------------------------
# Extraction (server process: linear-time scans only)
# ---------------------------------------------------------------------------------------
_DOC_START_RE = re.compile(r"<!doctype\s+html|<html\b", re.IGNORECASE)
_DOC_END_RE = re.compile(r"</html\s*>", re.IGNORECASE)


def extract(response: str, options: Options, context: ItemContext) -> str | None:
    """The HTML the model answered with, or None."""
    del context
    answer = last_tag_content(response, "answer")
    if answer is not None:
        return find_html_document(answer) or last_fenced_block(answer) or answer or None
    if options.strict_tags:
        return None
    return find_html_document(response) or last_fenced_block(response)


def find_html_document(text: str) -> str | None:
    """The last `<!DOCTYPE html>`/`<html>` document: to its `</html>`, or to the end if cut.

    A document starts at the last start marker that begins a document: a `<html>` right
    after a `<!DOCTYPE html>` belongs to it, so the earliest marker of the final run of
    markers counts. One pass of two regexes, no backtracking.
    """
    starts = [m.start() for m in _DOC_START_RE.finditer(text)]
    if not starts:
        return None
    ends = [m.end() for m in _DOC_END_RE.finditer(text)]
    # The documents are delimited by `</html>`: the last document starts at the first
    # marker after the last end that precedes the final marker.
    last_start = starts[-1]
    previous_ends = [end for end in ends if end <= last_start]
    boundary = previous_ends[-1] if previous_ends else 0
    start = next(s for s in starts if s >= boundary)
    following_ends = [end for end in ends if end > last_start]
    end = following_ends[-1] if following_ends else len(text)
    return text[start:end].strip() or None


# ---------------------------------------------------------------------------------------
# Rendering and scoring (worker process)
# ---------------------------------------------------------------------------------------
@cached_reference_render(maxsize=16, pixels=lambda rendering: rendering.image)
def _render_reference(html: str, settings: RenderSettings) -> Rendering:
    from reward_server.browser import render_html

    return render_html(html, settings)


def warm_up() -> None:
    """Run at a worker's start: launch this process's Chromium and render one page."""
    from reward_server.browser import render_html

    render_html("<p>warm</p>", Options().render_settings())


def compare(
    extracted: str, reference: Reference, options: Options, context: ItemContext
) -> Verdict:
    """Score the extracted page against the reference page(s); the best reference counts."""
    from reward_server.browser import RenderError, render_html

    del context
    golds = [g for g in golds_of(reference) if isinstance(g, str) and g.strip()]
    if not golds or len(golds) != len(golds_of(reference)):
        return Verdict(0.0, status="error", message="the reference must be non-empty HTML text")
    if any(len(g) > options.max_html_chars for g in golds):
        return Verdict(0.0, status="error", message="the reference is over max_html_chars")
    if len(extracted) > options.max_html_chars:
        return Verdict(0.0, status="rejected",
                       message=f"HTML of {len(extracted)} chars is over max_html_chars")

    settings = options.render_settings()
    try:
        candidate = render_html(extracted, settings)
    except RenderError as exc:
        if exc.kind == "timeout":
            return Verdict(0.0, status="timeout", message=f"the answer's page: {exc}")
        if exc.kind == "crash":
            return Verdict(0.0, message=f"the answer's page does not render: {exc}")
        return Verdict(0.0, status="error", message=str(exc))

    def against(gold: str) -> Verdict:
        try:
            gold_rendering = _render_reference(gold, settings)
        except RenderError as exc:
            return Verdict(0.0, status="error", message=f"the reference does not render: {exc}")
        return _score(extracted, gold, candidate, gold_rendering, options)

    best = best_over_golds(golds, against)
    assert best is not None  # golds is not empty
    return best


def _score(
    code: str, gold: str, candidate: Rendering, reference: Rendering, options: Options
) -> Verdict:
    from reward_server.image_similarity import visual_similarity

    gold_image, candidate_image = _same_height(reference.image, candidate.image)
    components = dict(visual_similarity(gold_image, candidate_image))
    components.update({
        "text": text_similarity(reference.text, candidate.text, options.max_text_chars),
        "token_jaccard": token_jaccard(code, gold),
        "tag_jaccard": tag_jaccard(code, gold),
    })
    components["code"] = (
        _RECIPE_TOKEN_WEIGHT * components["token_jaccard"]
        + _RECIPE_TAG_WEIGHT * components["tag_jaccard"]
    )
    weighted = (
        options.visual_weight * components["visual"]
        + options.text_weight * components["text"]
        + options.code_weight * components["code"]
    )
    total = options.visual_weight + options.text_weight + options.code_weight
    message = None
    if candidate.blocked:
        message = f"blocked {len(candidate.blocked)} request(s), e.g. {candidate.blocked[0][:120]}"
    return Verdict(min(1.0, max(0.0, weighted / total)), components, message=message)


_WHITESPACE_RE = re.compile(r"\s+")


def text_similarity(reference: str, candidate: str, max_chars: int = 20_000) -> float:
    """Normalized Indel similarity of two visible texts, whitespace collapsed, in [0, 1]."""
    from rapidfuzz import fuzz

    reference = _WHITESPACE_RE.sub(" ", reference[: 2 * max_chars]).strip()[:max_chars]
    candidate = _WHITESPACE_RE.sub(" ", candidate[: 2 * max_chars]).strip()[:max_chars]
    if not reference and not candidate:
        return 1.0
    return fuzz.ratio(reference, candidate) / 100.0


def _same_height(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pad the shorter screenshot by repeating its last row (the page's own background).

    Both are the viewport's width; a page that is longer than the other shows its extra
    content against the other's background, which is what a reader scrolling would see.
    """
    import numpy as np

    height = max(a.shape[0], b.shape[0])

    def pad(image: np.ndarray) -> np.ndarray:
        missing = height - image.shape[0]
        return np.pad(image, ((0, missing), (0, 0), (0, 0)), mode="edge") if missing else image

    return pad(a), pad(b)
