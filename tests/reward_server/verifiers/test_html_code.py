"""`html-code`: extraction, rendered scoring order, hostile pages through the engine.

Rendering tests start Debian's Chromium themselves; they never skip.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from reward_server import registry
from reward_server.browser import browser_launches
from reward_server.engine import Engine
from reward_server.extraction import last_fenced_block
from reward_server.settings import Settings
from reward_server.types import ItemContext, ScoreItem
from reward_server.verifiers import html_code
from reward_server.verifiers.html_code import (
    Options,
    compare,
    extract,
    find_html_document,
    text_similarity,
)
from tests.reward_server.test_browser import _chromium_browser_pids, _descendants

PAGES = Path(__file__).parents[2] / "data" / "html"
CTX = ItemContext()
OPTS = Options()


def page(name: str) -> str:
    return (PAGES / f"{name}.html").read_text()


def skeleton(html: str) -> str:
    """The bare tag skeleton: every tag kept, every text node (and style sheet) emptied."""
    return re.sub(r">[^<]+<", "><", html)


def with_edits(html: str, edits: list[tuple[str, str]]) -> str:
    for old, new in edits:
        assert old in html, old
        html = html.replace(old, new)
    return html


# -- extraction ------------------------------------------------------------------------

DOC = "<!DOCTYPE html><html><body><p>hi</p></body></html>"


@pytest.mark.parametrize(
    "response,expected",
    [
        # the last <answer> block wins, as in the recipe
        (f"<answer>{DOC}</answer>", DOC),
        (f"<answer><p>old</p></answer> then <answer>{DOC}</answer>", DOC),
        # a fenced document inside the answer is unwrapped
        (f"<think>plan</think><answer>\n```html\n{DOC}\n```\n</answer>", DOC),
        # prose around a document inside the answer is dropped
        (f"<answer>Here it is: {DOC} Hope it helps.</answer>", DOC),
        # an answer holding a fragment is taken as is
        ("<answer><div>fragment</div></answer>", "<div>fragment</div>"),
        # no tag: the last raw document (DOCTYPE and <html> together)
        (f"Sure!\n{DOC}\nDone.", DOC),
        ("<html><p>a</p></html> and <html><p>b</p></html>", "<html><p>b</p></html>"),
        # no tag, cut off by the token limit: to the end
        ("Here:\n<!doctype html><html><body><p>trunc", "<!doctype html><html><body><p>trunc"),
        # no tag, no document: the last fenced block, language line dropped
        ("```html\n<div>one</div>\n```\ntext\n```\n<div>two</div>\n```", "<div>two</div>"),
        # a fence left open by truncation
        ("```html\n<div>cut", "<div>cut"),
        # nothing that looks like code
        ("I cannot write this page.", None),
        ("<answer>   </answer>", None),
    ],
)
def test_extract(response: str, expected: str | None) -> None:
    assert extract(response, OPTS, CTX) == expected


def test_extract_with_strict_tags_needs_the_tag() -> None:
    strict = Options(strict_tags=True)
    assert extract(DOC, strict, CTX) is None
    assert extract(f"<answer>{DOC}</answer>", strict, CTX) == DOC


def test_extraction_scans_hostile_text_in_linear_time() -> None:
    # Many unmatched markers: a backtracking pattern would take minutes here.
    hostile = "<html" * 200_000 + "```" * 100_001 + "<answer>" * 50_000
    assert find_html_document(hostile) is not None
    assert last_fenced_block(hostile) is not None
    assert extract(hostile, OPTS, CTX) is not None


# -- scoring ---------------------------------------------------------------------------

SMALL_EDITS = {
    "bakery": [("#8b4513", "#a0522d"), ("soft as a cloud", "soft as a pillow")],
    "article": [("background: #e8eef5", "background: #eef2f7"), ("four hundred", "five hundred")],
    "pricing": [("$19", "$18"), ("#f4a300", "#e89b00")],
}


@pytest.mark.parametrize("reference", sorted(SMALL_EDITS))
def test_ordering_identical_small_change_different_skeleton(reference: str) -> None:
    gold = page(reference)
    identical = compare(gold, gold, OPTS, CTX)
    small = compare(with_edits(gold, SMALL_EDITS[reference]), gold, OPTS, CTX)
    others = [name for name in ("bakery", "article", "pricing", "login") if name != reference]
    different = [compare(page(name), gold, OPTS, CTX).score for name in others]
    bare = compare(skeleton(gold), gold, OPTS, CTX)

    assert identical.score == 1.0
    assert all(v == 1.0 for v in identical.components.values())
    assert 0.8 < small.score < 1.0
    assert small.score > max(different)
    assert min(different) > bare.score
    # The recipe gives a bare skeleton 0.6 x token + 0.4 x tag Jaccard (0.5 or more here);
    # it shows nothing, so it must score well below any real page.
    assert bare.components["code"] > 0.45
    assert bare.components["visual"] < 0.01 and bare.components["text"] == 0.0
    assert bare.score < 0.1


def test_styled_skeleton_scores_well_below_the_page() -> None:
    gold = page("bakery")
    styled = gold.split("<body>")[0] + "<body>" + skeleton(gold.split("<body>")[1])
    verdict = compare(styled, gold, OPTS, CTX)
    assert verdict.components["text"] == 0.0
    assert verdict.score < 0.3


def test_right_text_without_layout_earns_the_text_share() -> None:
    gold = page("pricing")
    text_only = "<pre>" + re.sub(r"<[^>]+>|\{[^}]*\}", " ", gold.split("<body>")[1]) + "</pre>"
    verdict = compare(text_only, gold, OPTS, CTX)
    assert verdict.components["text"] > 0.9
    assert 0.35 < verdict.score < 0.7


def test_weights_are_options() -> None:
    gold = page("article")
    recipe_only = Options(visual_weight=0.0, text_weight=0.0, code_weight=1.0)
    verdict = compare(skeleton(gold), gold, recipe_only, CTX)
    assert verdict.score == pytest.approx(verdict.components["code"])


@pytest.mark.parametrize(
    "reference,expected,fragment",
    [
        (123, 0.0, "non-empty HTML"),  # not text
        ("", 0.0, "non-empty HTML"),
        (["<p>a</p>", None], 0.0, "non-empty HTML"),
        ("<p>" + "x" * 1_000_001 + "</p>", 0.0, "max_html_chars"),
    ],
)
def test_malformed_reference_is_an_error(reference: object, expected: float, fragment: str) -> None:
    verdict = compare("<p>a</p>", reference, OPTS, CTX)  # type: ignore[arg-type]
    assert (verdict.status, verdict.score) == ("error", expected)
    assert fragment in (verdict.message or "")


def test_ten_megabyte_answer_is_refused_without_rendering() -> None:
    huge = "<div>" + "lorem ipsum " * 900_000 + "</div>"
    assert len(huge) > 10_000_000
    verdict = compare(huge, page("bakery"), OPTS, CTX)
    assert (verdict.status, verdict.score) == ("rejected", 0.0)  # a guard: scored as wrong
    assert "max_html_chars" in (verdict.message or "")


def test_huge_elements_are_clamped() -> None:
    gold = page("bakery")
    giant = gold.replace("<body>", "<body><div style='width:100000px;height:100000px'></div>")
    verdict = compare(giant, gold, OPTS, CTX)
    assert verdict.status == "ok"
    assert verdict.score < compare(gold, gold, OPTS, CTX).score


def test_blocked_requests_are_reported_and_do_not_count() -> None:
    gold = page("pricing")
    hostile = gold.replace(
        "<body>",
        "<body><img src='http://example.com/pixel.gif'>"
        "<link rel='stylesheet' href='file:///etc/passwd'>",
    )
    verdict = compare(hostile, gold, OPTS, CTX)
    assert verdict.status == "ok"
    assert "blocked" in (verdict.message or "") and "example.com" in (verdict.message or "")
    assert verdict.components["text"] == 1.0


def test_javascript_is_off_by_default() -> None:
    gold = "<body><p>Hello from the page</p></body>"
    scripted = "<body><script>document.write('<p>Hello from the page</p>')</script></body>"
    assert compare(scripted, gold, OPTS, CTX).components["text"] == 0.0
    assert compare(scripted, gold, Options(javascript=True), CTX).components["text"] == 1.0


def test_endless_script_is_a_timeout_verdict() -> None:
    verdict = compare(
        "<p>x</p><script>while (true) {}</script>",
        page("bakery"),
        Options(javascript=True, render_timeout_s=1.0),
        CTX,
    )
    assert (verdict.status, verdict.score) == ("timeout", 0.0)


def test_killed_browser_is_restarted_between_verdicts() -> None:
    gold = page("article")
    assert compare(gold, gold, OPTS, CTX).score == 1.0
    launches = browser_launches()
    for pid in _chromium_browser_pids():
        os.kill(pid, signal.SIGKILL)
    html_code._render_reference.cache_clear()  # force both pages through the new browser
    assert compare(gold, gold, OPTS, CTX).score == 1.0
    assert browser_launches() == launches + 1


def test_text_similarity_edges() -> None:
    assert text_similarity("", "") == 1.0
    assert text_similarity("some text", "") == 0.0
    assert text_similarity("a  b\n c", "a b c") == 1.0
    assert 0.0 < text_similarity("fresh bread", "fresh bead") < 1.0


# -- through the engine ----------------------------------------------------------------


def _item(response: str, reference: str, item_id: str, **options: object) -> ScoreItem:
    return ScoreItem(
        answer_type="html-code",
        response=f"<answer>{response}</answer>",
        answer=reference,
        id=item_id,
        options=dict(options),
    )


def test_hostile_pages_time_out_while_the_batch_is_fine() -> None:
    gold = page("bakery")
    items = [
        _item(gold, gold, "faithful"),
        # the page's own limit fires first: the verifier answers `timeout`, worker kept
        _item("<script>while(true){}</script>", gold, "loop", javascript=True),
        # no page limit within the item timeout: the engine kills the worker
        _item("<body onload='while(true){}'>x</body>", gold, "onload-loop",
              javascript=True, render_timeout_s=120.0),
        _item("<div>" * 100_000 + "deep" + "</div>" * 100_000, gold, "deep"),
        _item(skeleton(gold), gold, "skeleton"),
        _item(with_edits(gold, SMALL_EDITS["bakery"]), gold, "small"),
    ]
    with Engine(Settings(workers=2, item_timeout_s=12.0, cache_size=0)) as engine:
        results = {r.id: r for r in engine.score_sync(items)}
        # The pool is still serving after the kill.
        again = engine.score_sync([_item(gold, gold, "again")])[0]

    assert results["faithful"].status == "ok" and results["faithful"].reward == 1.0
    assert results["small"].status == "ok" and results["small"].reward > 0.8
    assert results["skeleton"].status == "ok" and results["skeleton"].reward < 0.1
    assert results["loop"].status == "timeout" and results["loop"].reward == 0.0
    assert results["onload-loop"].status == "timeout" and results["onload-loop"].reward == 0.0
    assert results["deep"].status == "rejected"  # over max_html_chars: scored as wrong
    assert again.status == "ok" and again.reward == 1.0
    assert results["skeleton"].components["tag_jaccard"] == 1.0


@pytest.mark.parametrize(
    "options",
    [
        {"scale": 5.0},  # over the capture limit
        {"visual_weight": -1.0},
        {"visual_weight": 0.0, "text_weight": 0.0, "code_weight": 0.0},
        {"max_html_chars": 0},
        {"viewport_width": 100_000},
    ],
)
def test_bad_options_are_refused_by_the_registry(options: dict[str, object]) -> None:
    with pytest.raises(registry.OptionsError):
        registry.build_options("html-code", options)


def test_chromium_killed_mid_batch_costs_at_most_its_items() -> None:
    """Kill the worker's Chromium while a batch renders: every item still gets a result,
    and the next batch is served by a fresh browser."""
    gold = page("bakery")
    pages = [with_edits(gold, SMALL_EDITS["bakery"])] + [
        gold.replace("</body>", f"<p>variant {i}</p></body>") for i in range(7)
    ]
    items = [_item(p, gold, f"p{i}") for i, p in enumerate(pages)]
    results: list[object] = []
    with Engine(Settings(workers=1, item_timeout_s=20.0, cache_size=0)) as engine:
        engine.score_sync([_item(gold, gold, "warm-up")])  # the worker's browser is up
        batch = threading.Thread(target=lambda: results.extend(engine.score_sync(items)))
        batch.start()
        time.sleep(0.5)
        killed = 0
        for pid in _descendants(os.getpid()):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--remote-debugging-pipe" in argv and b"chromium" in argv[0]:
                os.kill(pid, signal.SIGKILL)
                killed += 1
        batch.join(120)
        again = engine.score_sync([_item(gold, gold, "again")])[0]
    assert killed >= 1
    assert len(results) == len(items)
    # A render cut by the kill is scored, an error, or (its page never loads) a timeout.
    statuses = {r.status for r in results}  # type: ignore[attr-defined]
    assert statuses <= {"ok", "error", "timeout"} and "ok" in statuses
    assert again.status == "ok" and again.reward == 1.0
