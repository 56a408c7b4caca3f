"""Extraction time against answer length, for every answer type, on hostile text.

`extract` runs in the server process, outside the workers' timeout, so it must be linear
in the response length. For each answer type and each length this times `extract` on
several shapes of hostile text (number words, long digit runs, unclosed tags, brackets,
mixed markup), with strict and lenient tags, and prints the worst case (best of
`--repeat` runs, to see through a busy machine). A linear extractor's time grows like the
length: the last column compares the two longest.

    python bench/extraction.py [--lengths 100000,1000000,2000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from reward_server import registry
from reward_server.types import ItemContext

# Each shape: an opening, then a unit repeated to the wanted length, placed inside an
# answer block (and a think block).
SHAPES: dict[str, str | tuple[str, str]] = {
    "answer then dots": ("Yes", "."),
    "letter then marks": ("B) ", "!?;:"),
    "number words": "one hundred and twenty ",
    "scale words": "hundred thousand million dozen ",
    "digits": "1234567890",
    "digit groups": "1,000,",
    "unclosed tags": "<answer><think>",
    "brackets": "[0.1, 0.2, ([{",
    "boxed": "\\boxed{\\frac{1}{",
    "letters": "A or B, (C) D. ",
    "markup": "<svg><html><!DOCTYPE html>```\n",
    "yes/no": "yes no not true ",
    "spaces": " \t\n",
}


def hostile(shape: str, length: int) -> str:
    """A response of about `length` characters of the shape, in both blocks."""
    opening, unit = ("", SHAPES[shape]) if isinstance(SHAPES[shape], str) else SHAPES[shape]
    body = opening + (unit * (length // len(unit) + 1))[:length]
    return f"<think>{body}</think><answer>{body}</answer>"


def time_extract(extract: Callable[..., object], response: str, options: object) -> float:
    context = ItemContext(prompt_type="cot", choices=("a", "b", "c", "d"))
    start = time.perf_counter()
    extract(response, options, context)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="100000,1000000,2000000")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]

    print("| answer_type | " + " | ".join(f"{n:,} chars ms" for n in lengths)
          + " | time ratio, last two | slowest shape |")
    print("| --- | " + " | ".join("---:" for _ in lengths) + " | ---: | --- |")
    for name in registry.names():
        extract = registry.get(name).load().extract
        worst: list[tuple[float, str]] = []
        for length in lengths:
            slowest = (0.0, "")
            for strict in (True, False):
                options = registry.build_options(name, {"strict_tags": strict})
                for shape in SHAPES:
                    response = hostile(shape, length)
                    seconds = min(
                        time_extract(extract, response, options) for _ in range(args.repeat)
                    )
                    slowest = max(slowest, (seconds, shape))
            worst.append(slowest)
        ratio = worst[-1][0] / max(worst[-2][0] if len(worst) > 1 else worst[0][0], 1e-9)
        cells = " | ".join(f"{seconds * 1000:,.1f}" for seconds, _ in worst)
        print(f"| `{name}` | {cells} | {ratio:,.0f} | {worst[-1][1]} |")
    if len(lengths) > 1:
        print(f"\nlength ratio, last two: {lengths[-1] / lengths[-2]:,.0f}")


if __name__ == "__main__":
    main()
