"""Extraction runs in the server process, outside the item timeout: on a 1M-character
answer of any hostile shape, every answer type's `extract` finishes well within the item
timeout (linear work; `bench/extraction.py` prints the time against the length)."""

from __future__ import annotations

import time

import pytest

from bench.extraction import SHAPES, hostile
from reward_server import registry
from reward_server.settings import Settings
from reward_server.types import ItemContext

LENGTH = 1_000_000


@pytest.mark.parametrize("name", registry.names())
def test_million_character_answers_extract_within_the_item_timeout(name: str) -> None:
    limit_s = Settings().item_timeout_s
    extract = registry.get(name).load().extract
    options = registry.build_options(name, {"strict_tags": False})
    context = ItemContext(prompt_type="cot", choices=("a", "b", "c", "d"))
    for shape in SHAPES:
        response = hostile(shape, LENGTH)
        start = time.perf_counter()
        extract(response, options, context)
        elapsed = time.perf_counter() - start
        assert elapsed < limit_s, f"{name} on {shape!r}: {elapsed:.1f} s"


def test_a_long_run_of_number_words_is_not_read_as_one_huge_number() -> None:
    number = registry.get("number").load()
    options = registry.build_options("number", {})
    run = "one hundred and twenty " * 40_000
    start = time.perf_counter()
    extracted = number.extract(f"<answer>{run}</answer>", options, ItemContext())
    assert time.perf_counter() - start < Settings().item_timeout_s
    assert extracted is not None and len(extracted) < 20
