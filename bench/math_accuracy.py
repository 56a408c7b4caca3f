"""Accuracy and throughput of the `math-expressions` verifier against Math-Verify alone.

Run: `python bench/math_accuracy.py [--corpus reward_server/known_answers/math_equivalence.jsonl]`

Part 1, on the labelled corpus (one process, one item at a time, no cache):
- ours: `extract` + `compare` of reward_server.verifiers.math_expressions;
- Math-Verify the common way: the gold wrapped in `\\boxed{}`, `parse` with default configs
  on the whole completion, `verify(gold, pred)`;
- Math-Verify on the `<answer>` content (how the recipe's grader calls it).
Agreement with the labels, false accepts, false rejects, items/s.

Part 2, GRPO-shaped batches: one group of 16 completions per corpus problem (answers
repeat within a group, with different reasoning around them, as sampling at temperature
1 gives), scored by Math-Verify one completion at a time, by our verifier in this process
with the verdict dedup the engine does, and through `Engine` with one worker (the whole
service path: extraction, cache, process pool). Items/s and the ratio to Math-Verify,
measured in one run.

The corpus is a known-answers file (`reward_server.known_answers`): a row's `response` is
the whole completion and `expected` is 1 for an equivalent pair, 0 for a non-equivalent one.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reward_server import known_answers  # noqa: E402
from reward_server.extraction import last_tag_content  # noqa: E402
from reward_server.types import ItemContext, ScoreItem  # noqa: E402
from reward_server.verifiers import math_expressions  # noqa: E402

GROUP_SIZE = 16
ANSWER_TYPE = "math-expressions"


@dataclass(frozen=True)
class Case:
    gold: Any
    completion: str
    equivalent: bool
    source: str


def load_corpus(path: Path) -> list[Case]:
    return [Case(row.answer, row.response, row.expected == 1.0, row.source)
            for row in known_answers.load([ANSWER_TYPE], files=[path])]


# -- the three graders ------------------------------------------------------------------

_OPTIONS = math_expressions.Options()
_CONTEXT = ItemContext()


def ours(gold: Any, completion: str) -> bool:
    extracted = math_expressions.extract(completion, _OPTIONS, _CONTEXT)
    if extracted is None:
        return False
    return math_expressions.compare(extracted, gold, _OPTIONS, _CONTEXT).score == 1.0


def _boxed_gold(gold: Any) -> str:
    text = str(gold).strip()
    if text.startswith("$") and text.endswith("$") and len(text) > 1:
        text = text.strip("$")
    return text if "\\boxed" in text else "\\boxed{" + text + "}"


def math_verify_common(gold: Any, completion: str) -> bool:
    from math_verify import parse, verify

    return bool(verify(parse(_boxed_gold(gold)), parse(completion)))


def math_verify_tag_content(gold: Any, completion: str) -> bool:
    from math_verify import parse, verify

    content = last_tag_content(completion, "answer")
    if content is None:
        return False
    return bool(verify(parse(_boxed_gold(gold)), parse(content)))


GRADERS: dict[str, Callable[[Any, str], bool]] = {
    "ours (math-expressions)": ours,
    "Math-Verify, common way": math_verify_common,
    "Math-Verify on <answer> content": math_verify_tag_content,
}


# -- part 1: accuracy --------------------------------------------------------------------


def accuracy_table(cases: list[Case]) -> list[dict[str, Any]]:
    rows = []
    for name, grade in GRADERS.items():
        grade(cases[0].gold, cases[0].completion)  # warm imports and caches
        verdicts = []
        start = time.perf_counter()
        for case in cases:
            verdicts.append(grade(case.gold, case.completion))
        elapsed = time.perf_counter() - start
        pairs = list(zip(verdicts, cases, strict=True))
        agree = sum(v == c.equivalent for v, c in pairs)
        rows.append({
            "grader": name,
            "agreement": agree / len(cases),
            "false_accepts": sum(v and not c.equivalent for v, c in pairs),
            "false_rejects": sum(c.equivalent and not v for v, c in pairs),
            "items_per_s": len(cases) / elapsed,
            "misses": [c for v, c in pairs if v != c.equivalent],
        })
    return rows


# -- part 2: GRPO-shaped throughput ------------------------------------------------------


def grpo_batch(cases: list[Case], seed: int = 0) -> list[tuple[Any, str]]:
    """One group of 16 completions per problem: the problem's answer written the same way
    most of the time, sometimes boxed or in `$...$`, sometimes another problem's answer;
    the reasoning before it differs in every completion."""
    rng = random.Random(seed)
    answers = [last_tag_content(c.completion, "answer") or c.completion for c in cases]
    batch = []
    for index, case in enumerate(cases):
        own = answers[index]
        variants = [own] * 9 + [f"${own}$", f"\\boxed{{{own}}}"]
        for sample in range(GROUP_SIZE):
            pick = rng.random()
            answer = rng.choice(variants) if pick < 0.75 else rng.choice(answers)
            thought = f"Step {sample}: let me work through problem {index} carefully."
            batch.append((case.gold, f"<think>{thought}</think><answer>{answer}</answer>"))
    return batch


def time_math_verify(batch: list[tuple[Any, str]]) -> float:
    start = time.perf_counter()
    for gold, completion in batch:
        math_verify_common(gold, completion)
    return time.perf_counter() - start


def time_ours_in_process(batch: list[tuple[Any, str]]) -> float:
    """Extraction per completion, `compare` once per (gold, extracted answer)."""
    start = time.perf_counter()
    verdicts: dict[tuple[str, str], float] = {}
    for gold, completion in batch:
        extracted = math_expressions.extract(completion, _OPTIONS, _CONTEXT)
        if extracted is None:
            continue
        key = (json.dumps(gold), extracted)
        if key not in verdicts:
            verdicts[key] = math_expressions.compare(extracted, gold, _OPTIONS, _CONTEXT).score
    return time.perf_counter() - start


def time_engine(batch: list[tuple[Any, str]]) -> float:
    from reward_server.cache import LRUVerdictCache
    from reward_server.engine import Engine
    from reward_server.settings import Settings

    items = [ScoreItem(ANSWER_TYPE, completion, gold) for gold, completion in batch]
    with Engine(Settings(workers=1, item_timeout_s=10)) as engine:
        engine.score_sync(items[:1])  # start the worker and import sympy there
        engine.cache = LRUVerdictCache(engine.settings.cache_size)  # start with an empty cache
        start = time.perf_counter()
        for offset in range(0, len(items), GROUP_SIZE * 8):  # batches of 8 prompts
            engine.score_sync(items[offset : offset + GROUP_SIZE * 8])
        return time.perf_counter() - start


# -- output ------------------------------------------------------------------------------


def print_accuracy(rows: list[dict[str, Any]], cases: list[Case]) -> None:
    negatives = sum(not c.equivalent for c in cases)
    print(f"\nCorpus: {len(cases)} labelled pairs, {negatives} non-equivalent "
          f"({negatives / len(cases):.0%})\n")
    print("| grader | agreement | false accepts | false rejects | items/s |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['grader']} | {row['agreement']:.1%} | {row['false_accepts']} | "
              f"{row['false_rejects']} | {row['items_per_s']:.0f} |")


def print_throughput(timings: dict[str, list[float]], items: int) -> None:
    base = statistics.median(timings["Math-Verify, common way"])
    print(f"\nGRPO-shaped batch: {items} completions ({items // GROUP_SIZE} groups of "
          f"{GROUP_SIZE}); median of {len(next(iter(timings.values())))} runs\n")
    print("| grader | seconds | items/s | vs Math-Verify |")
    print("|---|---:|---:|---:|")
    for name, runs in timings.items():
        median = statistics.median(runs)
        print(f"| {name} | {median:.2f} | {items / median:.0f} | {base / median:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_corpus = known_answers.PACKAGE_DIR / "math_equivalence.jsonl"
    parser.add_argument("--corpus", type=Path, default=default_corpus)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of the GRPO batch")
    parser.add_argument("--groups", type=int, default=96, help="problems in the GRPO batch")
    parser.add_argument("--show-misses", action="store_true", help="list disagreements")
    args = parser.parse_args()
    # Math-Verify logs every timeout and parse failure; the engine logs verifier modules
    # of other branches it cannot preload
    logging.disable(logging.CRITICAL)

    cases = load_corpus(args.corpus)
    rows = accuracy_table(cases)
    print_accuracy(rows, cases)
    if args.show_misses:
        for row in rows[:1]:
            print(f"\nDisagreements of {row['grader']}:")
            for case in row["misses"]:
                print(f"  label={case.equivalent!s:5} gold={case.gold!r} "
                      f"completion={case.completion[:120]!r}  [{case.source}]")

    short = [c for c in cases if len(c.completion) < 200]  # answer-only stage answers
    step = max(1, len(short) // args.groups)
    batch = grpo_batch(short[::step][: args.groups])
    names = ("Math-Verify, common way", "ours, in process (dedup)", "ours, Engine(workers=1)")
    timings: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.runs):
        timings["Math-Verify, common way"].append(time_math_verify(batch))
        timings["ours, in process (dedup)"].append(time_ours_in_process(batch))
        timings["ours, Engine(workers=1)"].append(time_engine(batch))
    print_throughput(timings, len(batch))


if __name__ == "__main__":
    main()
