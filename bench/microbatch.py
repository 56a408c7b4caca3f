"""Client-side micro-batching: 512 concurrent single-item calls from one process.

verl, slime, AReaL and OpenRLHF ask for one sample's reward per call. This sends a
GRPO-shaped set of 512 items (32 prompts x 16 samples, a few distinct answers per
group, math and counting) as 512 concurrent single-item calls, (a) each as its own
`/score` request and (b) through `reward_client.batching.Coalescer`, against one freshly
started server, each on its own golds so both start with a cold cache. Prints requests
sent, items verified (the server's cache misses), wall time and items/s.

    python bench/microbatch.py [--calls 512] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from reward_client import RewardClient  # noqa: E402
from reward_client.batching import Coalescer  # noqa: E402
from tests.services.server_process import running_server  # noqa: E402

GROUP = 16


def items(calls: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(calls // GROUP):
        gold = rng.randint(10, 10_000)
        if rng.random() < 0.5:
            answers = [f"\\frac{{{gold}}}{{2}}", f"{gold / 2}", f"{gold}", f"{gold}/2"]
            kind, answer = "math-expressions", f"\\frac{{{gold}}}{{2}}"
        else:
            answers = [str(gold), str(gold + 1), f"There are {gold} apples.", "1,000"]
            kind, answer = "number", str(gold)
        for _ in range(GROUP):
            out.append({"answer_type": kind, "answer": answer,
                        "response": f"<answer>{rng.choice(answers)}</answer>"})
    return out


def misses(url: str) -> int:
    return int(httpx.get(url + "/health").json()["cache"]["misses"])


async def one_request_each(url: str, batch: list[dict[str, Any]]) -> int:
    client = RewardClient(url, max_concurrency=64)
    # one shared connection, as a framework's per-sample client would keep one
    async with client.connect() as connection:
        await asyncio.gather(*(client.ascore([item], connection=connection) for item in batch))
    return len(batch)


async def coalesced(url: str, batch: list[dict[str, Any]]) -> int:
    coalescer = Coalescer(url)
    try:
        await asyncio.gather(*(coalescer.score_one_async(item) for item in batch))
        return coalescer.stats.requests
    finally:
        coalescer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = []
    with running_server({"REWARD_WORKERS": str(args.workers)}) as url:
        for name, run, seed in (("one request per call", one_request_each, 1),
                                ("coalesced (5 ms window)", coalesced, 2)):
            batch = items(args.calls, seed)
            before = misses(url)
            start = time.perf_counter()
            requests = asyncio.run(run(url, batch))
            elapsed = time.perf_counter() - start
            rows.append((name, requests, misses(url) - before, elapsed, len(batch) / elapsed))
    print(f"{args.calls} concurrent single-item calls, {args.workers} workers, one process\n")
    print("| mode | requests sent | items verified | wall s | items/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, requests, verified, elapsed, rate in rows:
        print(f"| {name} | {requests} | {verified} | {elapsed:.2f} | {rate:.0f} |")


if __name__ == "__main__":
    main()
