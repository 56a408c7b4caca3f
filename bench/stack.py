"""The reward stack through its balancer: throughput with 1, 2 and 3 replicas, and the
cache-hit rate of the shared Redis cache against private per-replica caches.

Each row is a fresh `docker compose up` of docker-compose.yml (the image built from this
checkout), warmed up on items outside the workload, then driven by 8 concurrent clients
through the same GRPO-shaped workload: prompts of 16 samples (a few distinct answers
each; mixed simple types, math with fresh golds, SVG and HTML from pools of drawings and
pages), each group sent as two requests of 8 samples, the second halves after all first
halves, as when two rollout workers report one group at different times. Prints items/s,
request p50/p99, the share of items answered from a cache (`cached: true`, duplicates
within a request included), the verifications the replicas ran (their
`reward_cache_misses_total`), and the CPU time the replicas' containers used (their
cgroups): items per CPU-second is the per-core rate to size a deployment with, whatever
else the machine was running.

    python bench/stack.py [--prompts 160] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from tests.deploy.stack import (  # noqa: E402
    Stack,
    build_image,
    container_engine_env,
    running_stack,
)
from tests.deploy.workload import grpo_batch  # noqa: E402

GROUP = 16
WEIGHTS = (0.5, 0.3, 0.12, 0.08, 0.0)  # simple, math, svg, html, general-code prompts


def workload(prompts: int, seed: int = 7) -> list[list[dict[str, Any]]]:
    """Requests of two half-groups each: every first half, then every second half."""
    rng = random.Random(seed)
    groups = [grpo_batch(rng, groups=1, samples=GROUP, weights=WEIGHTS) for _ in range(prompts)]
    half = GROUP // 2
    firsts = [g[:half] for g in groups]
    seconds = [g[half:] for g in groups]
    pair = [firsts[i] + firsts[i + 1] for i in range(0, prompts - 1, 2)]
    pair += [seconds[i] + seconds[i + 1] for i in range(0, prompts - 1, 2)]
    return pair


def warm_up_batch(n: int) -> list[dict[str, Any]]:
    """Every answer type once, on golds the workload never uses."""
    rng = random.Random(-n - 1)
    items = grpo_batch(rng, groups=4, samples=1, weights=(1, 1, 0, 0, 0))
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' width='50' height='50'>"
           f"<circle cx='25' cy='25' r='{5 + n}' fill='black'/></svg>")
    html = f"<html><body><h2>warm-up {n}</h2></body></html>"
    items.append({"answer_type": "svg-code", "response": f"<answer>{svg}</answer>",
                  "answer": svg})
    items.append({"answer_type": "html-code", "response": f"<answer>{html}</answer>",
                  "answer": html})
    return items


@dataclass
class Row:
    replicas: int
    cache: str
    items: int
    seconds: float
    latencies: list[float]
    cached: int
    verifications: float
    cpu_seconds: float  # used by the replicas' containers during the run


async def drive(url: str, requests: list[list[dict[str, Any]]], clients: int
                ) -> tuple[float, list[float], int]:
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    latencies: list[float] = []
    cached = 0

    async def client() -> None:
        nonlocal cached
        async with httpx.AsyncClient(base_url=url, timeout=300) as http:
            while not queue.empty():
                batch = queue.get_nowait()
                started = time.perf_counter()
                response = await http.post("/score", json={"items": batch})
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)
                cached += sum(r["cached"] for r in response.json()["results"])

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, latencies, cached


def warm_up(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url, timeout=300) as http:
        for n in range(3 * stack.replicas):
            http.post("/score", json={"items": warm_up_batch(n)}).raise_for_status()


def measure(env: dict[str, str], image: str, replicas: int, shared: bool,
            requests: list[list[dict[str, Any]]], clients: int) -> Row:
    settings = {"REWARD_ITEM_TIMEOUT_S": "60"}
    if not shared:
        settings["REWARD_REDIS_URL"] = ""  # every replica keeps a private cache only
    with running_stack(env, image, replicas, settings) as stack:
        warm_up(stack)
        before = stack.metric_totals().get("reward_cache_misses_total", 0.0)
        cpu_before = stack.cpu_seconds()
        seconds, latencies, cached = asyncio.run(drive(stack.url, requests, clients))
        cpu = stack.cpu_seconds() - cpu_before
        after = stack.metric_totals().get("reward_cache_misses_total", 0.0)
    items = sum(len(r) for r in requests)
    return Row(replicas, "shared (Redis)" if shared else "private", items, seconds, latencies,
               cached, after - before, cpu)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=160)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    env = container_engine_env()
    image = build_image(env)
    requests = workload(args.prompts)
    items = sum(len(r) for r in requests)
    print(f"{items} items in {len(requests)} requests of {len(requests[0])}, "
          f"{args.clients} clients, 2 verifier workers per replica, "
          f"{os.cpu_count()} CPU cores on this machine (load average "
          f"{os.getloadavg()[0]:.1f} at start)\n")
    rows = [measure(env, image, n, True, requests, args.clients) for n in (1, 2, 3)]
    rows.append(measure(env, image, 3, False, requests, args.clients))
    print("| replicas | verdict cache | items/s | request p50 ms | request p99 ms "
          "| items from a cache | verifications | replica CPU s | items per CPU s |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row.replicas} | {row.cache} | {row.items / row.seconds:,.0f} | "
              f"{statistics.median(row.latencies) * 1000:,.0f} | "
              f"{percentile(row.latencies, 0.99) * 1000:,.0f} | "
              f"{100 * row.cached / row.items:.1f}% | {row.verifications:,.0f} | "
              f"{row.cpu_seconds:,.1f} | {row.items / row.cpu_seconds:,.0f} |")


if __name__ == "__main__":
    main()
