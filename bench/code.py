"""What the `general-code` sandbox costs, and how fast the pool scores code items.

1. Start-up: the median wall time of running an empty Python program (a) as a plain
   subprocess of the system interpreter and (b) through `reward_server.sandbox`
   (bwrap namespaces, mounts, the rlimit launcher), `--runs` times each.
2. Throughput: GRPO-shaped batches (8 prompts x 16 samples = 128 items) of MBPP
   problems from `tests/data/general_code.jsonl`, each sample a distinct program
   (correct, wrong, or crashing at import, as a policy's samples are), scored through
   `Engine` with the verdict cache off. Prints items/s and tests/s.
3. Many tests: one stdin/stdout item with `--tests` tests (CodeContests-sized), all
   passing, through the verifier: seconds per item and per test (one sandbox per item,
   a forked child per test).

    python bench/code.py [--runs 30] [--batches 2] [--workers N] [--tests 100]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reward_server import registry, sandbox  # noqa: E402
from reward_server.engine import Engine  # noqa: E402
from reward_server.settings import Settings  # noqa: E402
from reward_server.types import ItemContext, ScoreItem  # noqa: E402
from reward_server.verifiers import general_code  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "general_code.jsonl"
GROUP = 16
GROUPS_PER_BATCH = 8


def startup(runs: int) -> tuple[float, float]:
    """Median seconds of an empty program: plain subprocess, then sandboxed."""
    python = sandbox.find_python(sandbox.SandboxConfig())
    plain, boxed = [], []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([python, "-I", "-c", "pass"], check=True)
        plain.append(time.perf_counter() - started)
        started = time.perf_counter()
        run = sandbox.run_python("main.py", {"main.py": b"pass\n"})
        boxed.append(time.perf_counter() - started)
        assert run.kind == "exited" and run.exit_code == 0, run
    return statistics.median(plain), statistics.median(boxed)


def grpo_items(batches: int, seed: int = 0) -> list[ScoreItem]:
    """Groups of 16 distinct samples per MBPP problem: mostly right, some wrong or crashing."""
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    problems: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["source"].startswith("MBPP") and isinstance(row["answer"], list):
            kind = "right" if row["expected"] == 1.0 else "wrong"
            problems.setdefault(row["source"], {"answer": row["answer"]})[kind] = row["response"]
    complete = [p for p in problems.values() if "right" in p and "wrong" in p]
    rng = random.Random(seed)
    items: list[ScoreItem] = []
    for _ in range(batches * GROUPS_PER_BATCH):
        problem = rng.choice(complete)
        for sample in range(GROUP):
            draw = rng.random()
            response = problem["right"] if draw < 0.6 else problem["wrong"]
            if draw > 0.9:
                response = response.replace("```python\n", "```python\nraise ValueError\n", 1)
            # A distinct program per sample, as a policy at temperature 1 writes them.
            response = response.replace("```python\n", f"```python\n# sample {sample}\n", 1)
            items.append(ScoreItem("general-code", response, problem["answer"],
                                   id=str(len(items))))
    return items


def throughput(items: list[ScoreItem], workers: int) -> tuple[float, float, float, float]:
    """items/s, tests/s, mean reward, p50 batch seconds."""
    size = GROUP * GROUPS_PER_BATCH
    with Engine(Settings(workers=workers, cache_size=0)) as engine:
        engine.score_sync(items[:workers])  # warm the workers
        seconds, runs, rewards = [], 0.0, []
        for start in range(0, len(items), size):
            batch = items[start : start + size]
            started = time.perf_counter()
            results = engine.score_sync(batch)
            seconds.append(time.perf_counter() - started)
            bad = [r for r in results if r.status != "ok"]
            assert not bad, bad[0]
            runs += sum(_runs_of(r.components, r.acc_reward) for r in results)
            rewards += [r.acc_reward for r in results]
    total = sum(seconds)
    return len(items) / total, runs / total, statistics.mean(rewards), statistics.median(seconds)


def many_tests(count: int) -> float:
    """Seconds to verify one passing stdin/stdout item of `count` tests."""
    reference = json.dumps({"inputs": [f"{i} {i}\n" for i in range(count)],
                            "outputs": [f"{2 * i}\n" for i in range(count)]})
    options = registry.build_options("general-code", {})
    program = "a, b = map(int, input().split())\nprint(a + b)\n"
    started = time.perf_counter()
    verdict = general_code.compare(program, reference, options, ItemContext())
    seconds = time.perf_counter() - started
    assert verdict.score == 1.0, verdict
    return seconds


def _runs_of(components: dict[str, float], reward: float) -> float:
    """Tests an item ran: every test when it passed, up to the first failure if not."""
    return components["tests_total"] if reward == 1.0 else components["tests_passed"] + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--tests", type=int, default=100)
    args = parser.parse_args()

    plain, boxed = startup(args.runs)
    items = grpo_items(args.batches)
    rate, run_rate, mean_reward, p50 = throughput(items, args.workers)
    many = many_tests(args.tests)
    version = subprocess.run(["bwrap", "--version"], capture_output=True, text=True).stdout
    print(f"machine: {os.cpu_count()} CPUs, {args.workers} workers, {version.strip()}")
    print()
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| empty program, plain subprocess (median of {args.runs}) | {plain * 1000:.1f} ms |")
    print(f"| empty program, sandboxed (median of {args.runs}) | {boxed * 1000:.1f} ms |")
    print(f"| sandbox overhead | {(boxed - plain) * 1000:.1f} ms ({boxed / plain:.2f}x) |")
    print(f"| GRPO batches: {len(items)} items, {GROUPS_PER_BATCH} x {GROUP} per batch "
          f"(mean reward {mean_reward:.2f}) | {rate:.1f} items/s |")
    print(f"| tests run through the pool | {run_rate:.1f} tests/s |")
    print(f"| one batch of {GROUP * GROUPS_PER_BATCH} items, p50 | {p50:.2f} s |")
    print(f"| one stdin/stdout item of {args.tests} tests | {many:.2f} s "
          f"({many / args.tests * 1000:.1f} ms/test) |")


if __name__ == "__main__":
    main()
