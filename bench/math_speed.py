"""Speed of `math-expressions` on GRPO-shaped batches, against Math-Verify used the common way.

    python bench/math_speed.py [--groups 120] [--batch 512] [--workers N]

The batch is built from the labelled corpus
(`reward_server/known_answers/math_equivalence.jsonl`): one group of 16 chain-of-thought
completions per gold (the recipe's group size), whose answers are the gold's own
labelled answers (right and wrong ones), repeated the way sampling at temperature 1
repeats them, plus now and then another problem's answer. Every completion has its own
reasoning before the `<answer>` block, a quarter of them long (3,000-6,000 characters of
prose with inline math), so no two completions are equal
as text. Scored by:
(a) Math-Verify the common way: `verify(parse(gold), parse(completion))` per completion,
    the gold in `\\boxed{}`, default configs, one process;
(b) ours in this process: `extract` per completion, `compare` once per distinct
    (gold, extracted answer), as the engine deduplicates;
(c) our server over HTTP (`reward-server serve`, default workers unless `--workers`),
    batches of `--batch` items, first with a cold verdict cache, then again warm.

Printed: items/s of each; the CPU cost of one distinct (gold, answer) pair in one process
for (a), for Math-Verify given only the `<answer>` content, and for (b) (mean, median,
p90 over the pairs, the first completion of each pair timed in batch order, so a group's
gold is parsed by its first pair, as in a run); agreement with the corpus
labels on the samples whose answer is labelled; and how long the server took to start
(until `/health` answers with its workers warmed up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.math_accuracy import _boxed_gold, math_verify_common  # noqa: E402
from reward_server.extraction import last_tag_content  # noqa: E402
from reward_server.types import ItemContext  # noqa: E402
from reward_server.verifiers import math_expressions  # noqa: E402
from reward_server.verifiers import math_normalize as mn  # noqa: E402
from tests.services.server_process import running_server  # noqa: E402

GROUP_SIZE = 16
ANSWER_TYPE = "math-expressions"
CORPUS = ROOT / "reward_server" / "known_answers" / "math_equivalence.jsonl"
_OPTIONS = math_expressions.Options()
_CONTEXT = ItemContext()


@dataclass(frozen=True)
class Sample:
    gold: Any
    answer: str  # what the model wrote inside <answer>, or the whole completion
    completion: str
    label: bool | None  # the corpus label, None for another problem's answer


# -- the batch ---------------------------------------------------------------------------

_STEPS = (
    "First, note that $x^2 - {a}x + {b} = 0$ has roots whose sum is ${a}$.",
    "Substituting $y = {a}$ gives ${a} \\cdot {b} = {c}$, which is consistent.",
    "The area of the triangle is $\\frac{{1}}{{2}} \\cdot {a} \\cdot {b} = {h}$.",
    "By the Pythagorean theorem, $\\sqrt{{{a}^2 + {b}^2}}$ is the hypotenuse.",
    "So the probability is $\\frac{{{a}}}{{{c}}}$ before we account for order.",
    "Let me double-check the arithmetic: {a} + {b} = {s}, and {s} - {b} = {a}.",
    "The angle at $B$ is ${a}^\\circ$, so the other one is $({c} - {a})^\\circ$.",
    "Wait, that is not right; let us recompute the case $n = {a}$ carefully.",
    "Looking at the figure, the shaded region covers {a} of the {c} unit squares.",
)


def reasoning(rng: random.Random, long: bool) -> str:
    """Chain-of-thought text with inline math: 3,000-6,000 characters when `long`."""
    target = rng.randint(3000, 6000) if long else rng.randint(150, 700)
    parts: list[str] = []
    size = 0
    while size < target:
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        step = rng.choice(_STEPS).format(a=a, b=b, c=a * b, s=a + b, h=a * b / 2)
        parts.append(step)
        size += len(step) + 1
    return " ".join(parts)


def _answer_of(row: dict[str, Any]) -> tuple[str, bool | None, bool]:
    """A corpus row's answer text, its label, and whether the row is a whole completion
    (reasoning around the tags) to be used as it is."""
    content = last_tag_content(row["response"], "answer")
    whole = content is None or row["response"].strip() != f"<answer>{content}</answer>"
    return (row["response"] if whole else content), row["expected"] == 1.0, whole


def grpo_batch(groups: int, seed: int = 0) -> list[Sample]:
    """`groups` groups of 16 samples, one group per corpus gold (see module docstring)."""
    rng = random.Random(seed)
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    by_gold: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_gold.setdefault(json.dumps(row["answer"]), []).append(row)
    chosen = rng.sample(sorted(by_gold), min(groups, len(by_gold)))
    samples: list[Sample] = []
    for key in chosen:
        own = by_gold[key][:]
        rng.shuffle(own)
        pool = [_answer_of(row) for row in own[:3]]
        if rng.random() < 0.5:
            other = rng.choice(rows)
            if json.dumps(other["answer"]) != key:
                text, _, whole = _answer_of(other)
                pool.append((text, None, whole))  # no label against this gold
        weights = [6, 3, 2, 2][: len(pool)]
        gold = own[0]["answer"]
        for _ in range(GROUP_SIZE):
            answer, label, whole = rng.choices(pool, weights)[0]
            if whole:  # a full tagged completion from the corpus, used as it is
                samples.append(Sample(gold, answer, answer, label))
                continue
            wrap = 1.0 if "$" in answer or mn.looks_like_prose(answer) else rng.random()
            if wrap < 0.1:  # the same math answer spelled in inline math, or boxed
                answer = f"${answer}$"
            elif wrap < 0.2:
                answer = f"\\boxed{{{answer}}}"
            thought = reasoning(rng, long=rng.random() < 0.25)
            completion = f"<think>{thought}</think>\n<answer>{answer}</answer>"
            samples.append(Sample(gold, answer, completion, label))
    return samples


# -- graders -----------------------------------------------------------------------------


def math_verify_answer_only(gold: Any, completion: str) -> bool:
    """Math-Verify given only the `<answer>` content (as the recipe's grader calls it)."""
    from math_verify import parse, verify

    content = last_tag_content(completion, "answer")
    return bool(verify(parse(_boxed_gold(gold)), parse(completion if content is None
                                                       else content)))


def ours_one(gold: Any, completion: str) -> bool:
    extracted = math_expressions.extract(completion, _OPTIONS, _CONTEXT)
    if extracted is None:
        return False
    return math_expressions.compare(extracted, gold, _OPTIONS, _CONTEXT).score == 1.0


def _reset_our_caches() -> None:
    for cached in (getattr(math_expressions, name, None) for name in dir(math_expressions)):
        if callable(getattr(cached, "cache_clear", None)):
            cached.cache_clear()


def time_math_verify(batch: list[Sample]) -> tuple[float, list[bool]]:
    start = time.perf_counter()
    verdicts = [math_verify_common(s.gold, s.completion) for s in batch]
    return time.perf_counter() - start, verdicts


def time_ours(batch: list[Sample]) -> tuple[float, list[bool]]:
    """Extraction per completion, `compare` once per (gold, extracted answer)."""
    _reset_our_caches()
    start = time.perf_counter()
    seen: dict[tuple[str, str], bool] = {}
    verdicts = []
    for sample in batch:
        extracted = math_expressions.extract(sample.completion, _OPTIONS, _CONTEXT)
        if extracted is None:
            verdicts.append(False)
            continue
        key = (json.dumps(sample.gold), extracted)
        if key not in seen:
            verdict = math_expressions.compare(extracted, sample.gold, _OPTIONS, _CONTEXT)
            seen[key] = verdict.score == 1.0
        verdicts.append(seen[key])
    return time.perf_counter() - start, verdicts


def pair_costs(batch: list[Sample], grade: Callable[[Any, str], bool]) -> list[float]:
    """CPU milliseconds of this process to grade the first completion of each distinct
    (gold, answer) pair (CPU time, so that other jobs on a shared machine do not count)."""
    first: dict[tuple[str, str], Sample] = {}
    for sample in batch:
        first.setdefault((json.dumps(sample.gold), sample.answer), sample)
    costs = []
    for sample in first.values():
        start = time.process_time()
        grade(sample.gold, sample.completion)
        costs.append((time.process_time() - start) * 1000)
    return costs


async def _post_batches(url: str, batch: list[Sample], size: int) -> tuple[float, list[bool]]:
    verdicts: list[bool] = []
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        start = time.perf_counter()
        for offset in range(0, len(batch), size):
            items = [{"answer_type": ANSWER_TYPE, "response": s.completion, "answer": s.gold,
                      "prompt_type": "cot"} for s in batch[offset : offset + size]]
            response = await client.post("/score", json={"items": items})
            response.raise_for_status()
            verdicts.extend(r["acc_reward"] == 1.0 for r in response.json()["results"])
        return time.perf_counter() - start, verdicts


def time_http(batch: list[Sample], size: int, workers: int | None) -> dict[str, Any]:
    env = {} if workers is None else {"REWARD_WORKERS": str(workers)}
    env["REWARD_WARM_UP"] = "true"
    start = time.perf_counter()
    with running_server(env, startup_s=180) as url:
        answering = time.perf_counter() - start
        # a server without the readiness fields (an older build) counts as ready at once
        while (health := httpx.get(url + "/health", timeout=10).json()).get(
                "worker_start_s", 0.0) is None:
            time.sleep(0.1)  # the workers are still warming up
        ready = time.perf_counter() - start
        cold = asyncio.run(_post_batches(url, batch, size))
        warm = asyncio.run(_post_batches(url, batch, size))
    return {"answering_s": answering, "ready_s": ready, "workers": health["workers"],
            "warmup_s": health.get("warmup_s"), "cold": cold, "warm": warm}


# -- output ------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def agreement(batch: list[Sample], verdicts: list[bool]) -> str:
    labelled = [(s.label, v) for s, v in zip(batch, verdicts, strict=True) if s.label is not None]
    agree = sum(label == v for label, v in labelled)
    return f"{agree / len(labelled):.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=120, help="golds (groups of 16)")
    parser.add_argument("--batch", type=int, default=512, help="items per HTTP request")
    parser.add_argument("--workers", type=int, default=None, help="server workers (default: "
                        "the server's own default, one per core)")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # Math-Verify logs every parse failure

    batch = grpo_batch(args.groups)
    pairs = len({(json.dumps(s.gold), s.answer) for s in batch})
    labelled = sum(s.label is not None for s in batch)
    long = sum(len(s.completion) > 3000 for s in batch)
    print(f"{len(batch)} completions: {len(batch) // GROUP_SIZE} golds x {GROUP_SIZE}, "
          f"{pairs} distinct (gold, answer) pairs, {long} completions over 3,000 characters, "
          f"{labelled} with a corpus label; {os.cpu_count()} CPUs\n")

    math_verify_common(batch[0].gold, batch[0].completion)  # imports
    ours_one(batch[0].gold, batch[0].completion)
    mv_seconds, mv_verdicts = time_math_verify(batch)
    our_seconds, our_verdicts = time_ours(batch)
    http = time_http(batch, args.batch, args.workers)
    mv_costs = pair_costs(batch, math_verify_common)
    mv_answer_costs = pair_costs(batch, math_verify_answer_only)
    _reset_our_caches()
    our_costs = pair_costs(batch, ours_one)

    mv_rate = len(batch) / mv_seconds
    print("| grader | items/s | vs Math-Verify | agreement with labels |")
    print("|---|---:|---:|---:|")
    rows = [
        ("(a) Math-Verify, common way (one process)", mv_seconds, mv_verdicts),
        ("(b) ours, in process (dedup)", our_seconds, our_verdicts),
        (f"(c) ours, HTTP, cold cache ({http['workers']} workers)", *http["cold"]),
        (f"(c) ours, HTTP, warm cache ({http['workers']} workers)", *http["warm"]),
    ]
    for name, seconds, verdicts in rows:
        rate = len(batch) / seconds
        print(f"| {name} | {rate:,.0f} | {rate / mv_rate:.1f}x | {agreement(batch, verdicts)} |")

    print(f"\nCPU cost of one distinct (gold, answer) pair, one process, {len(mv_costs)} "
          "pairs:\n")
    print("| grader | mean ms | median ms | p90 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for name, costs in (("Math-Verify, common way", mv_costs),
                        ("Math-Verify on the <answer> content", mv_answer_costs),
                        ("ours (extract + compare)", our_costs)):
        print(f"| {name} | {statistics.fmean(costs):.2f} | {statistics.median(costs):.2f} | "
              f"{percentile(costs, 0.9):.2f} | {max(costs):.1f} |")

    warmup = "n/a" if http["warmup_s"] is None else f"{http['warmup_s']:.1f} s"
    print(f"\nServer start: /health answered after {http['answering_s']:.1f} s, every worker "
          f"warmed up after {http['ready_s']:.1f} s (longest warm-up inside a worker "
          f"{warmup}); load average at the end: "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
