"""Rendering benchmarks for the coding rewards (`svg-code`, `html-code`).

    python bench/render.py [--repeats N] [--pool-items N] [--only svg|html]

Each benchmark is one function `bench_<name>(args) -> list[Row]`, listed in `BENCHMARKS`;
the rows of all of them are printed as one table:
- per pair: median and p90 milliseconds to score one (reference, candidate) pair in this
  process (extract + compare, warm: imports done, reference render cached as in a worker
  that has seen the group);
- pool: items per second through the `Engine` worker pool on GRPO-shaped batches
  (groups of 16 distinct candidates per reference), cold verdict cache.
Goals on the 2-core development machine: SVG under 30 ms per pair, HTML under 150 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from reward_server.types import ItemContext, ScoreItem


@dataclass(frozen=True)
class Row:
    benchmark: str
    case: str
    median_ms: float | None = None
    p90_ms: float | None = None
    items_per_s: float | None = None
    note: str = ""


def _timed(call: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _pair_row(benchmark: str, case: str, times_ms: list[float], note: str = "") -> Row:
    ordered = sorted(times_ms)
    return Row(
        benchmark,
        case,
        median_ms=statistics.median(ordered),
        p90_ms=ordered[int(0.9 * (len(ordered) - 1))],
        note=note,
    )


# ---------------------------------------------------------------------------------------
# SVG
# ---------------------------------------------------------------------------------------
SVG_REFERENCES = {
    "circle": '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    '<circle cx="{x}" cy="50" r="20" fill="{colour}"/></svg>',
    "text+shapes": '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 100">'
    '<rect x="10" y="10" width="180" height="80" rx="8" fill="#eef" stroke="navy"/>'
    '<text x="{x}" y="60" font-size="28" font-family="sans-serif" fill="{colour}">'
    "Hello SVG</text></svg>",
    "icon paths": '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
    '<g fill="none" stroke="{colour}" '
    'stroke-width="2"><path d="M3 12 L{x} 3 L21 12"/><path d="M5 10 V21 H19 V10"/>'
    '<path d="M9 21 V14 H15 V21"/><circle cx="12" cy="8" r="1.5" fill="red"/></g></svg>',
}
_SVG_DEFAULTS = {"circle": (50, "red"), "text+shapes": (30, "black"), "icon paths": (12, "#333")}


def _svg_variants(name: str, count: int) -> list[str]:
    """`count` distinct candidates for one reference: shifts and colour changes."""
    x0, colour0 = _SVG_DEFAULTS[name]
    colours = [colour0, "blue", "green", "#c00", "purple", "orange", "gray", "teal"]
    return [
        SVG_REFERENCES[name].format(x=x0 + (i % 5), colour=colours[i % len(colours)])
        for i in range(count)
    ]


def bench_svg_pair(args: argparse.Namespace) -> list[Row]:
    """Median ms per SVG pair in this process (render both, compare), per reference."""
    from reward_server.verifiers import svg_code

    options, context = svg_code.Options(), ItemContext()
    rows = []
    for name in SVG_REFERENCES:
        x0, colour0 = _SVG_DEFAULTS[name]
        reference = SVG_REFERENCES[name].format(x=x0, colour=colour0)
        candidates = _svg_variants(name, args.repeats)
        svg_code.compare(candidates[0], reference, options, context)  # imports, warm cache
        responses = iter([f"<answer>{c}</answer>" for c in candidates])

        def one_pair(responses: Iterator[str] = responses, reference: str = reference) -> None:
            extracted = svg_code.extract(next(responses), options, context)
            assert extracted is not None
            svg_code.compare(extracted, reference, options, context)

        rows.append(_pair_row("svg pair", name, _timed(one_pair, args.repeats), "reference cached"))

    def cold_pair(reference: str = reference, candidate: str = candidates[1]) -> None:
        svg_code._render_reference.cache_clear()  # render the reference too
        svg_code.compare(candidate, reference, options, context)

    rows.append(
        _pair_row("svg pair", "icon paths", _timed(cold_pair, args.repeats), "both rendered")
    )
    return rows


def bench_svg_pool(args: argparse.Namespace) -> list[Row]:
    """Items/s through the Engine's worker pool, GRPO groups of 16, cold verdict cache."""
    from reward_server.engine import Engine
    from reward_server.settings import Settings

    items = []
    groups = max(1, args.pool_items // 16)
    for g in range(groups):
        name = list(SVG_REFERENCES)[g % len(SVG_REFERENCES)]
        x0, colour0 = _SVG_DEFAULTS[name]
        # a distinct reference per group (the x offset) so no group reuses another's render
        reference = SVG_REFERENCES[name].format(x=x0 + g % 7, colour=colour0) + f"<!--{g}-->"
        for candidate in _svg_variants(name, 16):
            items.append(ScoreItem("svg-code", f"<answer>{candidate}</answer>", reference))
    settings = Settings(cache_size=0)
    rates = []
    with Engine(settings) as engine:
        engine.score_sync(items[:16])  # start the workers
        for _ in range(args.pool_runs):
            start = time.perf_counter()
            results = engine.score_sync(items)
            rates.append(len(items) / (time.perf_counter() - start))
    bad = sum(r.status != "ok" for r in results)
    note = f"{len(items)} items, {settings.workers} workers, median of {len(rates)} runs" + (
        f", {bad} not ok" if bad else ""
    )
    return [Row("svg pool", "GRPO groups of 16", items_per_s=statistics.median(rates), note=note)]


# ---------------------------------------------------------------------------------------
# HTML (append bench_html_* functions here and list them in BENCHMARKS)
# ---------------------------------------------------------------------------------------
HTML_PAGES = ("bakery", "article", "pricing")


def _html_page(name: str) -> str:
    from pathlib import Path

    return (Path(__file__).parents[1] / "tests" / "data" / "html" / f"{name}.html").read_text()


def _html_variants(page: str, count: int) -> list[str]:
    """`count` distinct candidates for one page: a line of text added, a colour changed."""
    colours = ["#222", "#333", "#444", "#111", "#000", "#555"]
    return [
        page.replace("</body>", f"<p>note {i}</p></body>", 1).replace(
            "<body>", f"<body style='color:{colours[i % len(colours)]}'>", 1
        )
        for i in range(count)
    ]


def bench_html_pair(args: argparse.Namespace) -> list[Row]:
    """Median ms per HTML pair in this process (warm browser), per reference page."""
    from reward_server.verifiers import html_code

    options, context = html_code.Options(), ItemContext()
    rows = []
    reference = ""
    for name in HTML_PAGES:
        reference = _html_page(name)
        candidates = _html_variants(reference, args.repeats + 1)
        html_code.compare(candidates[-1], reference, options, context)  # browser, cache
        responses = iter([f"<answer>{c}</answer>" for c in candidates])

        def one_pair(responses: Iterator[str] = responses, reference: str = reference) -> None:
            extracted = html_code.extract(next(responses), options, context)
            assert extracted is not None
            html_code.compare(extracted, reference, options, context)

        rows.append(
            _pair_row("html pair", name, _timed(one_pair, args.repeats), "reference cached")
        )

    def cold_pair(reference: str = reference, candidate: str = candidates[0]) -> None:
        html_code._render_reference.cache_clear()  # render the reference too
        html_code.compare(candidate, reference, options, context)

    rows.append(
        _pair_row("html pair", HTML_PAGES[-1], _timed(cold_pair, args.repeats), "both rendered")
    )
    return rows


def bench_html_pool(args: argparse.Namespace) -> list[Row]:
    """Items/s through the Engine's worker pool, GRPO groups of 16, cold verdict cache."""
    from reward_server.engine import Engine
    from reward_server.settings import Settings

    # A fifth of the SVG item count: an HTML pair costs about ten SVG pairs.
    groups = max(1, args.pool_items // 5 // 16)
    items = []
    for g in range(groups):
        # a distinct reference per group so no group reuses another's render
        reference = _html_page(HTML_PAGES[g % len(HTML_PAGES)]) + f"<!--{g}-->"
        for candidate in _html_variants(reference, 16):
            items.append(ScoreItem("html-code", f"<answer>{candidate}</answer>", reference))
    settings = Settings(cache_size=0)
    with Engine(settings) as engine:
        # start the workers and their browsers
        engine.score_sync(
            [ScoreItem("html-code", f"<answer><p>{i}</p></answer>", "<p>w</p>") for i in range(4)]
        )
        start = time.perf_counter()
        results = engine.score_sync(items)
        elapsed = time.perf_counter() - start
    bad = sum(r.status != "ok" for r in results)
    rate = len(items) / elapsed
    note = f"{rate:.2f} items/s, {len(items)} items, {settings.workers} workers" + (
        f", {bad} not ok" if bad else ""
    )
    return [Row("html pool", "GRPO groups of 16", items_per_s=rate, note=note)]


# ---------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------
BENCHMARKS: dict[str, list[Callable[[argparse.Namespace], list[Row]]]] = {
    "svg": [bench_svg_pair, bench_svg_pool],
    "html": [bench_html_pair, bench_html_pool],
}


def print_table(rows: list[Row]) -> None:
    """A Markdown table (pasted into the README as is)."""

    def cell(value: float | None, digits: int = 1) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    print("| benchmark | case | median ms | p90 ms | items/s | note |")
    print("|---|---|---:|---:|---:|---|")
    for row in rows:
        print(
            f"| {row.benchmark} | {row.case} | {cell(row.median_ms)} | {cell(row.p90_ms)} "
            f"| {cell(row.items_per_s, 0)} | {row.note} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="pairs timed per case")
    parser.add_argument("--pool-items", type=int, default=640, help="items per pool run")
    parser.add_argument("--pool-runs", type=int, default=3, help="pool runs (median)")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), help="run one family")
    args = parser.parse_args()
    rows: list[Row] = []
    for family, benchmarks in BENCHMARKS.items():
        if args.only in (None, family):
            for benchmark in benchmarks:
                rows.extend(benchmark(args))
    print_table(rows)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\n{os.cpu_count()} CPUs, load average (1, 5, 15 min) at the end: {load}")


if __name__ == "__main__":
    main()
