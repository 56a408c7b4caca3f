"""Throughput of the reward server on GRPO-shaped batches.

2,000 items of the simple answer types (multiple-choice, number, boolean, ocrtext, bbox,
any), in groups of 16 samples per prompt with realistic duplication (a group repeats a
few distinct answers), sent in batches of 8 groups (128 items). Scored
(a) in process through `Engine` and (b) over HTTP against a freshly started server,
each first with a cold verdict cache, then again warm (both once every worker has
started and warmed up, as `/health` reports). Prints items/s and the p50/p99 latency of
one batch, the HTTP rates as shares of the in-process ones, and where the CPU went: the
CPU time per batch of the process that runs the engine (this one, or the server; its
verifier worker processes not counted) and of the HTTP client, which shares the cores.

    python bench/throughput.py [--items 2000] [--workers 2] [--groups-per-batch 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import orjson  # noqa: E402

from reward_server.engine import Engine  # noqa: E402
from reward_server.settings import Settings  # noqa: E402
from reward_server.types import ScoreItem  # noqa: E402
from tests.services.server_process import server_process  # noqa: E402

GROUP = 16
GROUPS_PER_BATCH = 8


def _problem(rng: random.Random) -> tuple[str, Any, list[str]]:
    """One prompt: its answer type, gold, and the few distinct answers its group gives."""
    kind = rng.choice(["multiple-choice", "number", "boolean", "ocrtext", "bbox", "any"])
    if kind == "multiple-choice":
        gold = rng.choice("ABCD")
        answers = [gold, rng.choice("ABCD"), f"({rng.choice('ABCD')})", f"The answer is {gold}"]
    elif kind == "number":
        gold = rng.randint(0, 30)
        answers = [str(gold), str(gold + 1), f"There are {gold} apples.", "1,000"]
    elif kind == "boolean":
        gold = rng.choice(["yes", "no"])
        answers = ["yes", "no", "Yes.", "I don't know"]
    elif kind == "ocrtext":
        gold = [f"invoice {rng.randint(100, 999)}", "total due"]
        answers = [gold[0], gold[0].upper(), gold[0][:-1], "something else entirely"]
    elif kind == "bbox":
        x, y = rng.random() * 0.5, rng.random() * 0.5
        gold = [round(x, 3), round(y, 3), round(x + 0.3, 3), round(y + 0.3, 3)]
        answers = [str(gold), str([round(v + 0.02, 3) for v in gold]), "[0, 0, 1, 1]",
                   str([round(v * 1000) for v in gold])]
    else:
        gold = rng.choice(["Paris", "cat", "blue"])
        answers = [gold, gold.lower(), "dog", "green"]
    return kind, gold, answers


def make_items(count: int, seed: int = 0) -> list[ScoreItem]:
    rng = random.Random(seed)
    items: list[ScoreItem] = []
    while len(items) < count:
        kind, gold, answers = _problem(rng)
        for _ in range(GROUP):
            text = rng.choice(answers)
            items.append(ScoreItem(answer_type=kind, response=f"<answer>{text}</answer>",
                                   answer=gold, id=str(len(items))))
    return items[:count]


def batches(items: list[ScoreItem]) -> list[list[ScoreItem]]:
    size = GROUP * GROUPS_PER_BATCH  # set by --groups-per-batch
    return [items[i : i + size] for i in range(0, len(items), size)]


def as_json(item: ScoreItem) -> dict[str, Any]:
    return {"id": item.id, "answer_type": item.answer_type, "response": item.response,
            "answer": item.answer}


Row = tuple[str, float, list[float], float, float | None]  # label, s, latencies, CPU s


def process_cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_in_process(items: list[ScoreItem], workers: int) -> list[Row]:
    rows = []
    with Engine(Settings(workers=workers)) as engine:
        while engine.health()["worker_start_s"] is None:
            time.sleep(0.1)  # the workers are still starting and warming up
        for label in ("cold", "warm"):
            latencies = []
            start, cpu = time.perf_counter(), time.process_time()
            for batch in batches(items):
                t0 = time.perf_counter()
                engine.score_sync(batch)
                latencies.append(time.perf_counter() - t0)
            rows.append((f"in process, {label} cache", time.perf_counter() - start, latencies,
                         time.process_time() - cpu, None))
    return rows


async def _post_all(url: str, items: list[ScoreItem]) -> tuple[float, list[float], float]:
    """Seconds for all batches, each batch's latency, and the client's CPU seconds."""
    latencies = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        start, cpu = time.perf_counter(), time.process_time()
        for batch in batches(items):
            t0 = time.perf_counter()
            # orjson, as a trainer's client would: the stdlib encoder costs the client
            # (on the same two cores) about as much as the server's whole warm path
            body = orjson.dumps({"items": [as_json(i) for i in batch]})
            response = await client.post("/score", content=body,
                                         headers={"content-type": "application/json"})
            response.raise_for_status()
            latencies.append(time.perf_counter() - t0)
        return time.perf_counter() - start, latencies, time.process_time() - cpu


def run_http(items: list[ScoreItem], workers: int) -> list[Row]:
    rows = []
    with server_process({"REWARD_WORKERS": str(workers)}, startup_s=180) as server:
        url, pid = server.url, server.process.pid
        while httpx.get(url + "/health", timeout=10).json()["worker_start_s"] is None:
            time.sleep(0.1)  # the workers are still starting and warming up
        for label in ("cold", "warm"):
            server_cpu = process_cpu_s(pid)
            total, latencies, client_cpu = asyncio.run(_post_all(url, items))
            rows.append((f"HTTP, {label} cache", total, latencies,
                         process_cpu_s(pid) - server_cpu, client_cpu))
    return rows


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--groups-per-batch", type=int, default=GROUPS_PER_BATCH,
                        help="groups of 16 per request (the recipe's batch is 32 prompts)")
    args = parser.parse_args()
    globals()["GROUPS_PER_BATCH"] = args.groups_per_batch
    items = make_items(args.items)
    distinct = len({(i.answer_type, i.response, str(i.answer)) for i in items})
    print(f"{len(items)} items, {distinct} distinct (answer, reference) pairs, "
          f"batches of {GROUP * GROUPS_PER_BATCH}, {args.workers} workers\n")
    rows = run_in_process(items, args.workers) + run_http(items, args.workers)
    print("| mode | items/s | batch p50 ms | batch p99 ms | engine process CPU ms/batch "
          "| client CPU ms/batch |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    rates = {}
    for label, total, latencies, cpu, client_cpu in rows:
        rates[label] = len(items) / total
        client = "" if client_cpu is None else f"{client_cpu / len(latencies) * 1000:.2f}"
        print(f"| {label} | {rates[label]:,.0f} | "
              f"{statistics.median(latencies) * 1000:.1f} | "
              f"{percentile(latencies, 0.99) * 1000:.1f} | "
              f"{cpu / len(latencies) * 1000:.2f} | {client} |")
    for cache in ("cold", "warm"):
        share = rates[f"HTTP, {cache} cache"] / rates[f"in process, {cache} cache"]
        print(f"\nHTTP, {cache} cache: {share:.0%} of the in-process rate", end="")
    print(f"\n\nload average (1, 5, 15 min) at the end: "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
