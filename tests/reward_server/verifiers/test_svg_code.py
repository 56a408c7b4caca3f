"""`svg-code`: extraction, repair, rendered scoring, and hostile SVG."""

from __future__ import annotations

import base64
import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from reward_server.engine import Engine
from reward_server.settings import Settings
from reward_server.types import ItemContext, ScoreItem, Verdict
from reward_server.verifiers import svg_code
from reward_server.verifiers.svg_code import (
    MAX_DIMENSION,
    Options,
    _DataOnlyFetcher,
    compare,
    extract,
    find_svg_block,
    harden_svg,
    render_svg,
    repair_svg,
)

CONTEXT = ItemContext()
OPTIONS = Options()
NS = 'xmlns="http://www.w3.org/2000/svg"'
XLINK = 'xmlns:xlink="http://www.w3.org/1999/xlink"'


def score(candidate: str, reference: str, options: Options = OPTIONS) -> Verdict:
    extracted = extract(f"<answer>{candidate}</answer>", options, CONTEXT)
    assert extracted is not None
    return compare(extracted, reference, options, CONTEXT)


# ---------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------
SVG = f"<svg {NS}><rect width='5' height='5'/></svg>"


@pytest.mark.parametrize(
    "response,expected",
    [
        # the answer block
        (f"<answer>{SVG}</answer>", SVG),
        # the LAST answer block counts
        (f"<answer><svg/></answer> then <answer>{SVG}</answer>", SVG),
        # text and a fence around the SVG inside the answer
        (f"<answer>Here:\n```svg\n{SVG}\n```</answer>", SVG),
        # spaces inside the answer tags
        (f"< answer >{SVG}</ answer >", SVG),
        # no answer block: the raw <svg> block
        (f"Sure! {SVG} Hope this helps.", SVG),
        # an answer without <svg falls back to the raw block elsewhere
        (f"{SVG}<answer>a red square</answer>", SVG),
        # the last top-level block, nested <svg> kept inside it
        (
            f"<svg {NS}/> and <svg {NS}><svg x='1'><rect/></svg></svg>",
            f"<svg {NS}><svg x='1'><rect/></svg></svg>",
        ),
        # a response cut off by the token limit: the unclosed block to the end
        (f"<answer><svg {NS}><circle r='3'", f"<svg {NS}><circle r='3'"),
        (f"<think>x</think><svg {NS}><g><rect/>", f"<svg {NS}><g><rect/>"),
        # a fenced block without <svg (scored later as not an SVG)
        ("```xml\n<rect width='5'/>\n```", "<rect width='5'/>"),
        # nothing that looks like code
        ("I cannot draw that.", None),
        ("<answer>a circle</answer>", None),
    ],
)
def test_extract_table(response: str, expected: str | None) -> None:
    assert extract(response, OPTIONS, CONTEXT) == expected


def test_extract_with_strict_tags_needs_the_answer_block() -> None:
    strict = Options(strict_tags=True)
    assert extract(f"Sure! {SVG}", strict, CONTEXT) is None
    assert extract(f"<answer>{SVG}</answer>", strict, CONTEXT) == SVG


@pytest.mark.parametrize(
    "hostile",
    [
        "<svg" * 200_000,  # tags that never end
        "<answer>" * 200_000 + "</answer>",  # openers without closers
        "<svg>" * 100_000,  # deep nesting, never closed
        "```" * 100_001,  # fences
        "<" * 300_000,
    ],
)
def test_extraction_and_repair_handle_pathological_text(hostile: str) -> None:
    # Linear scans: these return (an answer or None) instead of backtracking for minutes;
    # the pytest timeout is the bound.
    extracted = extract(hostile, OPTIONS, CONTEXT)
    assert extracted is None or extracted.startswith(("<svg", "`", "<"))
    repaired = repair_svg(hostile)
    assert "<svg<" not in repaired


def test_find_svg_block_prefers_a_trailing_truncated_block() -> None:
    text = f"first {SVG} second <svg {NS}><circle"
    assert find_svg_block(text) == f"<svg {NS}><circle"


# ---------------------------------------------------------------------------------------
# Repair and hardening
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "truncated,expected",
    [
        ("<svg><g><rect x='1'", "<svg><g></g></svg>"),  # partial tag dropped, two closed
        ("<svg><text>Hi &am", "<svg><text>Hi </text></svg>"),  # partial entity dropped
        ("<svg><!-- a <rect/>", "<svg></svg>"),  # unclosed comment dropped
        ("<svg><g></svg>", "<svg><g></g></svg>"),  # closer that skips an open element
        ("<svg></g><rect/></svg>", "<svg><rect/></svg>"),  # stray closer dropped
        ("<svg><a><b></a>", "<svg><a><b></b></a></svg>"),
        (SVG, SVG),  # complete SVG unchanged
    ],
)
def test_repair_table(truncated: str, expected: str) -> None:
    assert repair_svg(truncated) == expected


def test_harden_removes_doctype_and_clamps_dimensions() -> None:
    hostile = (
        '<!DOCTYPE svg [<!ENTITY a "b">]><svg width="100000" height="5e9px" stroke-width="3"/>'
    )
    assert harden_svg(hostile) == (
        f'<svg width="{MAX_DIMENSION}" height="{MAX_DIMENSION}px" stroke-width="3"/>'
    )
    public = '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://x/svg11.dtd"><svg/>'
    assert harden_svg(public) == "<svg/>"


# ---------------------------------------------------------------------------------------
# Rendered scoring: the required ordering on three references
# ---------------------------------------------------------------------------------------
CIRCLE = '<svg {ns} width="100" height="100"><circle cx="{x}" cy="50" r="20" fill="{c}"/></svg>'
LABEL = (
    '<svg {ns} viewBox="0 0 200 100"><rect x="10" y="10" width="180" height="80" fill="#eef" '
    'stroke="navy" stroke-width="3"/><text x="{x}" y="60" font-size="28" '
    'font-family="sans-serif" fill="{c}">Hello SVG</text></svg>'
)
ICON = (
    '<svg {ns} viewBox="0 0 100 100"><path d="M10 90 L{x} 10 L90 90 Z" fill="none" '
    'stroke="{c}" stroke-width="4"/><path d="M20 50 Q50 20 80 50" stroke="green" '
    'fill="none" stroke-width="3"/></svg>'
)

# (reference, shifted, recoloured, different drawing, blank, truncated before the drawing)
ORDERING = {
    "red circle": (
        CIRCLE.format(ns=NS, x=50, c="red"),
        CIRCLE.format(ns=NS, x=53, c="red"),
        CIRCLE.format(ns=NS, x=50, c="#c00000"),
        f'<svg {NS} width="100" height="100"><rect x="60" y="5" width="30" height="30" '
        'fill="green"/></svg>',
        f'<svg {NS} width="100" height="100"></svg>',
        CIRCLE.format(ns=NS, x=50, c="red")[:75],
    ),
    "label with text": (
        LABEL.format(ns=NS, x=30, c="black"),
        LABEL.format(ns=NS, x=33, c="black"),
        LABEL.format(ns=NS, x=30, c="#444"),
        ICON.format(ns=NS, x=50, c="black"),
        f'<svg {NS} viewBox="0 0 200 100"/>',
        LABEL.format(ns=NS, x=30, c="black")[:110],
    ),
    "paths": (
        ICON.format(ns=NS, x=50, c="black"),
        ICON.format(ns=NS, x=53, c="black"),
        ICON.format(ns=NS, x=50, c="purple"),
        CIRCLE.format(ns=NS, x=50, c="red"),
        f'<svg {NS} viewBox="0 0 100 100"></svg>',
        ICON.format(ns=NS, x=50, c="black")[:95],
    ),
}


@pytest.mark.parametrize("name", list(ORDERING))
def test_required_ordering(name: str) -> None:
    reference, shifted, recoloured, different, blank, truncated = ORDERING[name]
    identical = score(reference, reference).score
    near = [score(shifted, reference).score, score(recoloured, reference).score]
    far = score(different, reference).score
    assert identical == 1.0
    assert all(1.0 > value > far for value in near), (near, far)
    assert min(near) > 0.3  # a near miss keeps real credit
    assert score(blank, reference).score < 0.2
    assert score(truncated, reference).score < 0.2
    assert far < 0.2


def test_the_recipes_empty_svg_defect_is_fixed() -> None:
    # RECIPE.md: an empty <svg> scores about 0.77 against a small red circle there.
    reference = (
        f'<svg {NS} width="336" height="336"><circle cx="168" cy="168" r="20" fill="red"/></svg>'
    )
    verdict = score(f'<svg {NS} width="336" height="336"></svg>', reference)
    assert verdict.components["ssim"] > 0.9  # the recipe's image term is fooled...
    assert verdict.components["token_jaccard"] > 0.3  # ...and so is code overlap,
    assert verdict.score == 0.0  # but nothing is drawn, so nothing is earned


def test_components_are_reported() -> None:
    reference, shifted = ORDERING["red circle"][:2]
    verdict = score(shifted, reference)
    assert set(verdict.components) == {
        "ssim",
        "ssim_fg",
        "fg_iou",
        "visual",
        "token_jaccard",
        "tag_jaccard",
    }
    expected = verdict.components["visual"] * (
        0.5 + 0.25 * verdict.components["token_jaccard"] + 0.25 * verdict.components["tag_jaccard"]
    )
    assert verdict.score == pytest.approx(expected)


def test_same_picture_from_different_code_keeps_the_visual_credit() -> None:
    reference = ORDERING["red circle"][0]
    as_path = (
        f'<svg {NS} width="100" height="100"><path fill="red" '
        'd="M30 50 A20 20 0 1 0 70 50 A20 20 0 1 0 30 50 Z"/></svg>'
    )
    verdict = score(as_path, reference)
    assert verdict.components["visual"] > 0.9
    assert 0.5 < verdict.score < 0.95  # code overlap still counts, as in the recipe


def test_render_size_option() -> None:
    pixels = render_svg(ORDERING["red circle"][0], size=64)
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
    assert tuple(pixels[32, 32]) == (255, 0, 0) and tuple(pixels[0, 0]) == (255, 255, 255)
    assert (
        score(ORDERING["red circle"][0], ORDERING["red circle"][0], Options(size=64)).score == 1.0
    )
    with pytest.raises(ValueError):
        Options(size=100_000)


@pytest.mark.parametrize(
    "candidate",
    [
        f"<svg {NS}><rect width=5 height=5/></svg>",  # unquoted attributes: not XML
        f"<svg {NS}><rect width='5' height='5'/></svg><svg>",  # two roots after repair
        "<rect width='5' height='5'/>",  # no <svg> element
        f"<svg {NS}><text>caf&eacute;</text></svg>",  # HTML entity, undefined in XML
    ],
)
def test_invalid_svg_scores_zero_with_status_ok(candidate: str) -> None:
    verdict = compare(candidate, ORDERING["red circle"][0], OPTIONS, CONTEXT)
    assert verdict.score == 0.0
    assert verdict.status == "ok"
    assert verdict.message


@pytest.mark.parametrize(
    "reference",
    ["no svg here", f"<svg {NS}><rect width=5/></svg>"],
)
def test_a_broken_reference_is_an_error(reference: str) -> None:
    verdict = compare(ORDERING["red circle"][0], reference, OPTIONS, CONTEXT)
    assert verdict.status == "error"


# ---------------------------------------------------------------------------------------
# Hostile input: nothing is read from disk or network, sizes are bounded
# ---------------------------------------------------------------------------------------
RED_SQUARE = (
    f'<svg {NS} width="100" height="100"><rect x="10" y="10" width="80" height="80" '
    'fill="red"/></svg>'
)


def _png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) any URL cairosvg would open itself."""
    import cairosvg.url

    opened: list[str] = []

    def refuse(request: object, *args: object, **kwargs: object) -> bytes:
        opened.append(str(getattr(request, "full_url", request)))
        raise AssertionError("cairosvg tried to open a URL")

    monkeypatch.setattr(cairosvg.url, "urlopen", refuse)
    return opened


def test_data_url_images_are_still_drawn() -> None:
    # The control for the tests below: an inline red PNG is drawn, so a blank render
    # there means the file was not read.
    data = base64.b64encode(_png(100, 100, (255, 0, 0))).decode()
    inline = (
        f'<svg {NS} {XLINK} width="100" height="100">'
        '<image x="10" y="10" width="80" height="80" '
        f'xlink:href="data:image/png;base64,{data}"/></svg>'
    )
    assert score(inline, RED_SQUARE).components["visual"] > 0.9


@pytest.mark.parametrize("scheme", ["file://", ""])
def test_file_image_is_not_read(tmp_path: Path, no_network: list[str], scheme: str) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(_png(100, 100, (255, 0, 0)))
    candidate = (
        f'<svg {NS} {XLINK} width="100" height="100">'
        f'<image x="10" y="10" width="80" height="80" xlink:href="{scheme}{secret}"/></svg>'
    )
    fetcher = _DataOnlyFetcher()
    pixels = render_svg(candidate, fetcher=fetcher)
    assert (pixels == 255).all()  # a red square had it been read
    assert fetcher.refused and str(secret) in fetcher.refused[0]
    assert score(candidate, RED_SQUARE).score == 0.0
    assert no_network == []


@pytest.mark.parametrize(
    "candidate",
    [
        # an external image
        f'<svg {NS} {XLINK} width="100" height="100"><image width="100" height="100" '
        'xlink:href="http://127.0.0.1:9/red.png"/></svg>',
        f'<svg {NS} width="100" height="100"><image width="100" height="100" '
        'href="https://example.com/red.svg"/></svg>',
        # external fonts and stylesheets
        f'<svg {NS} width="100" height="100"><style>@import url("http://127.0.0.1:9/f.css");'
        '@font-face { font-family: X; src: url("http://127.0.0.1:9/x.woff"); }</style>'
        '<text x="5" y="50" font-family="X">Hi</text></svg>',
        '<?xml-stylesheet href="http://127.0.0.1:9/s.css" type="text/css"?>'
        f'<svg {NS} width="100" height="100"><rect width="9" height="9"/></svg>',
        # <use> of an element in another document
        f'<svg {NS} {XLINK} width="100" height="100">'
        '<use xlink:href="http://127.0.0.1:9/defs.svg#shape"/></svg>',
    ],
)
def test_network_resources_are_not_fetched(candidate: str, no_network: list[str]) -> None:
    fetcher = _DataOnlyFetcher()
    with contextlib.suppress(svg_code.RenderError):  # not drawing it is fine; fetching is not
        render_svg(candidate, fetcher=fetcher)
    verdict = score(candidate, RED_SQUARE)
    assert verdict.status == "ok" and verdict.score < 0.2
    assert no_network == []
    assert all(url.startswith(("http", "https")) for url in fetcher.refused)


def test_xxe_reads_nothing(tmp_path: Path, no_network: list[str]) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-MARKER-1234")
    candidate = (
        f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        f'<svg {NS} width="100" height="100"><text x="5" y="50">&xxe;</text></svg>'
    )
    verdict = score(candidate, RED_SQUARE)
    assert verdict.status == "ok" and verdict.score == 0.0
    assert "SECRET-MARKER" not in (verdict.message or "")
    with pytest.raises(svg_code.RenderError) as error:
        render_svg(candidate)
    assert "SECRET-MARKER" not in str(error.value)  # undefined entity: nothing substituted
    assert no_network == []


def test_xxe_is_refused_even_without_our_doctype_stripping(tmp_path: Path) -> None:
    # Defence in depth: cairosvg's defusedxml parser refuses entities by itself.
    from cairosvg.parser import Tree

    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-MARKER-1234")
    document = (
        f'<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file://{secret}">]><svg {NS}><text>&xxe;</text></svg>'
    )
    with pytest.raises(Exception, match="(?i)entit") as error:
        Tree(bytestring=document.encode(), url_fetcher=_DataOnlyFetcher(), unsafe=False)
    assert "SECRET-MARKER" not in str(error.value)


def test_billion_laughs_is_not_expanded() -> None:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    candidate = f"<!DOCTYPE svg [{entities}]><svg {NS}><text>&lol9;</text></svg>"
    verdict = score(candidate, RED_SQUARE)
    assert verdict.status == "ok" and verdict.score == 0.0


def test_ten_megabytes_are_refused_before_parsing() -> None:
    body = '<rect width="1" height="1"/>' * (10_000_000 // 28)
    candidate = f"<svg {NS}>{body}</svg>"
    verdict = compare(candidate, RED_SQUARE, OPTIONS, CONTEXT)
    assert verdict.status == "rejected" and verdict.score == 0.0  # a guard: scored as wrong
    assert "max_chars" in (verdict.message or "")
    assert extract(f"<answer>{candidate}</answer>", OPTIONS, CONTEXT) == candidate


@pytest.mark.parametrize(
    "candidate",
    [
        f'<svg {NS} width="100000" height="100000"><rect width="100000" height="100000" '
        'fill="red"/></svg>',
        f'<svg {NS} width="100" height="100"><svg width="100000" height="100000">'
        '<rect width="100%" height="100%" fill="red"/></svg></svg>',
        f'<svg {NS} width="100" height="100"><defs><pattern id="p" width="100000" '
        'height="100000" patternUnits="userSpaceOnUse"><rect width="50" height="50" '
        'fill="red"/></pattern></defs><rect width="100" height="100" fill="url(#p)"/></svg>',
    ],
)
def test_huge_dimensions_are_clamped(candidate: str) -> None:
    assert "100000" not in harden_svg(candidate)
    pixels = render_svg(candidate)
    assert pixels.shape == (336, 336, 3)
    verdict = compare(candidate, RED_SQUARE, OPTIONS, CONTEXT)
    assert verdict.status == "ok"


def test_inline_decompression_bomb_is_not_decoded() -> None:
    bomb = base64.b64encode(_png(5000, 5000, (255, 0, 0))).decode()  # 25 Mpx, small file
    candidate = (
        f'<svg {NS} {XLINK} width="100" height="100"><image width="100" height="100" '
        f'xlink:href="data:image/png;base64,{bomb}"/></svg>'
    )
    fetcher = _DataOnlyFetcher()
    pixels = render_svg(candidate, fetcher=fetcher)
    assert (pixels == 255).all()
    assert fetcher.refused and fetcher.refused[0].startswith("data:image/png")


# ---------------------------------------------------------------------------------------
# Through the worker engine
# ---------------------------------------------------------------------------------------
def test_hostile_items_through_the_engine_finish_in_order(engine: Engine, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-MARKER-1234")
    reference = ORDERING["red circle"][0]
    hostile = [
        f'<svg {NS} {XLINK}><image width="9" height="9" xlink:href="file://{secret}"/></svg>',
        f'<svg {NS}><image width="9" height="9" href="http://127.0.0.1:9/x.png"/></svg>',
        f'<!DOCTYPE svg [<!ENTITY x SYSTEM "file://{secret}">]><svg {NS}><text>&x;</text></svg>',
        "<svg" * 50_000,
        f'<svg {NS} width="100000" height="100000"><circle r="9"/></svg>',
    ]
    responses = [f"<answer>{svg}</answer>" for svg in hostile] + [f"<answer>{reference}</answer>"]
    results = engine.score_sync(
        [
            ScoreItem("svg-code", response, reference, id=str(i))
            for i, response in enumerate(responses)
        ]
    )
    assert [r.id for r in results] == [str(i) for i in range(len(responses))]
    assert all(r.status == "ok" for r in results), [(r.status, r.error) for r in results]
    assert all(r.reward < 0.2 for r in results[:-1])
    assert results[-1].reward == 1.0
    assert not any("SECRET-MARKER" in str(r.to_dict()) for r in results)


def test_registry_row_and_option_checks() -> None:
    from reward_server import registry

    assert registry.get("svg-code").load() is svg_code
    assert registry.build_options("svg-code", {"size": 128}).size == 128
    with pytest.raises(registry.OptionsError):
        registry.build_options("svg-code", {"visual_weight": 0})


def _use_bomb(levels: int) -> str:
    """Each level draws the previous one ten times: 10**levels rectangles."""
    defs = ['<rect id="a0" width="1" height="1" fill="red"/>']
    defs += [
        f'<g id="a{i}">' + f'<use href="#a{i - 1}"/>' * 10 + "</g>" for i in range(1, levels + 1)
    ]
    return (
        f'<svg {NS} viewBox="0 0 10 10"><defs>{"".join(defs)}</defs><use href="#a{levels}"/></svg>'
    )


def test_use_bomb_is_refused_before_rendering() -> None:
    # cairosvg itself gives up only after 100,000 referenced elements, about a minute.
    assert svg_code.use_expansion(_use_bomb(9)) > svg_code.MAX_USE_EXPANSION
    verdict = compare(_use_bomb(9), RED_SQUARE, OPTIONS, CONTEXT)
    assert verdict.status == "rejected" and verdict.score == 0.0  # a guard: scored as wrong
    assert "<use>" in (verdict.message or "")


@pytest.mark.parametrize(
    "source,expected",
    [
        # every <use> counts, those inside <defs> too (conservative): a1's ten uses draw
        # 2 each (use + rect), a2's ten draw 1 + 21 each, the outer one 1 + 221
        (_use_bomb(2), 10 * 2 + 10 * 22 + 222),
        (f"<svg {NS}><rect/></svg>", 0),  # no <use>
        (f'<svg {NS}><use href="#missing"/></svg>', 1),  # a dangling reference draws itself
        # a reference cycle counts as over the limit
        (f'<svg {NS}><g id="a"><use href="#a"/></g></svg>', svg_code.MAX_USE_EXPANSION + 1),
    ],
)
def test_use_expansion_counts(source: str, expected: int) -> None:
    assert svg_code.use_expansion(source) == expected


def test_ordinary_use_still_renders() -> None:
    icon = (
        f'<svg {NS} viewBox="0 0 100 100"><defs><rect id="r" x="10" y="10" width="80" '
        'height="80" fill="red"/></defs><use href="#r"/></svg>'
    )
    assert score(icon, RED_SQUARE).components["visual"] > 0.95


# -- entities: no external entity is read, no expansion bomb explodes --------------------


def test_external_entity_is_not_read(tmp_path: Path, no_network: list[str]) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET SECRET SECRET")
    body = (f'<svg {NS} width="300" height="100"><rect width="300" height="100" fill="white"/>'
            '<text x="0" y="80" font-size="80" fill="black">{}</text></svg>')
    xxe = (f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file://{secret}">]>'
           + body.format("&xxe;"))
    fetcher = _DataOnlyFetcher()
    try:
        pixels = render_svg(xxe, fetcher=fetcher)
    except svg_code.RenderError:
        pixels = None  # refusing to draw it is fine; drawing the secret is not
    if pixels is not None:
        drawn_secret = render_svg(body.format(secret.read_text()), fetcher=_DataOnlyFetcher())
        assert not np.array_equal(pixels, drawn_secret)
        assert (pixels > 200).mean() > 0.99  # nothing (or next to nothing) drawn
    assert all(str(secret) not in url for url in fetcher.refused)
    verdict = score(xxe, body.format(secret.read_text()))
    assert verdict.status in ("ok", "error") and verdict.score < 0.5
    assert no_network == []


def test_billion_laughs_finishes_quickly() -> None:
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    bomb = (f'<?xml version="1.0"?><!DOCTYPE svg [{"".join(levels)}]>'
            f'<svg {NS} width="100" height="100"><text y="50">&lol9;</text></svg>')
    with Engine(Settings(workers=1, item_timeout_s=5.0, cache_size=0)) as engine:
        result = engine.score_sync([ScoreItem(answer_type="svg-code", answer=RED_SQUARE,
                                              response=f"<answer>{bomb}</answer>")])[0]
    assert result.status in ("ok", "error") and result.reward < 0.5, result
