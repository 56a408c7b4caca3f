"""HTTP against gRPC on the same GRPO-shaped items, one server process serving both.

The items of `bench/throughput.py` (simple answer types, groups of 16 samples per prompt
with realistic duplication) are scored by one freshly started `reward-server serve` over
each transport, through the client's own connections (`reward_client`: httpx, grpc.aio;
one connection per mode, conversion to and from the wire included):

- batch 128 / batch 1024: requests of that many items, one at a time; latency per request;
- gRPC stream: one `ScoreStream` call, all items sent at once, one item per message or
  one GRPO group (16) per message; latency per item, from being sent to its result (so
  it includes waiting behind the others).

Each mode runs `--repeats` times in turn; items/s is the median run, latencies are pooled.

Two servers: `REWARD_CACHE_SIZE=0` (every batch verified: in-batch duplicates still
once), then the default cache after a warm-up pass (verdicts cached: what is left is the
transport, extraction and composing the result). Prints items/s and p50/p99 ms.

    python bench/transport.py [--items 4096] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from throughput import as_json, make_items, percentile  # noqa: E402

from reward_client.client import HttpConnection  # noqa: E402
from reward_client.grpc import GrpcConnection  # noqa: E402
from tests.services.server_process import ServerProcess, server_process  # noqa: E402

Row = tuple[str, float, list[float]]


async def _batches(conn: Any, items: list[dict[str, Any]], size: int) -> tuple[float, list[float]]:
    latencies = []
    start = time.perf_counter()
    for i in range(0, len(items), size):
        chunk = items[i : i + size]
        t0 = time.perf_counter()
        results = await conn.score(chunk)
        latencies.append(time.perf_counter() - t0)
        assert len(results) == len(chunk)
    return time.perf_counter() - start, latencies


async def _stream(
    conn: GrpcConnection, items: list[dict[str, Any]], per_message: int
) -> tuple[float, list[float]]:
    sent: dict[int, float] = {}

    async def source() -> AsyncIterator[dict[str, Any]]:
        for index, item in enumerate(items):
            sent[index] = time.perf_counter()
            yield item

    latencies = []
    start = time.perf_counter()
    async for result in conn.stream(source(), per_message):
        latencies.append(time.perf_counter() - sent[result["index"]])
    assert len(latencies) == len(items)
    return time.perf_counter() - start, latencies


async def _modes(
    server: ServerProcess, items: list[dict[str, Any]], label: str, repeats: int
) -> list[Row]:
    assert server.grpc_target is not None
    http = HttpConnection(server.url, 300.0, 4, 1024)
    grpc = GrpcConnection(server.grpc_target, 300.0)
    runs: list[tuple[str, Callable[[], Awaitable[tuple[float, list[float]]]]]] = []
    for size in (128, 1024):
        runs += [(f"HTTP, batch {size}", lambda s=size: _batches(http, items, s)),
                 (f"gRPC, batch {size}", lambda s=size: _batches(grpc, items, s))]
    runs += [("gRPC, stream, 1 item per message", lambda: _stream(grpc, items, 1)),
             ("gRPC, stream, 16 items per message", lambda: _stream(grpc, items, 16))]
    totals: dict[str, list[float]] = {name: [] for name, _ in runs}
    latencies: dict[str, list[float]] = {name: [] for name, _ in runs}
    async with http, grpc:
        # start the workers; with a cache, every verdict is cached before timing
        await _batches(http, items if label == "warm" else items[:64], 1024)
        for _ in range(repeats):
            for name, run in runs:
                total, run_latencies = await run()
                totals[name].append(total)
                latencies[name] += run_latencies
    return [(f"{name}, {label}", statistics.median(totals[name]), latencies[name])
            for name, _ in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    items = [as_json(item) for item in make_items(args.items)]
    distinct = len({(i["answer_type"], i["response"], str(i["answer"])) for i in items})
    print(f"{len(items)} items, {distinct} distinct (answer, reference) pairs, "
          f"{args.workers} workers, one server process for both transports, "
          f"{args.repeats} runs of each mode\n")
    rows: list[Row] = []
    for label, cache in (("no cache", "0"), ("warm", "100000")):
        env = {"REWARD_WORKERS": str(args.workers), "REWARD_CACHE_SIZE": cache}
        with server_process(env, grpc=True) as server:
            rows += asyncio.run(_modes(server, items, label, args.repeats))
    print("| mode | items/s | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, total, latencies in rows:
        print(f"| {name} | {len(items) / total:,.0f} | "
              f"{statistics.median(latencies) * 1000:.1f} | "
              f"{percentile(latencies, 0.99) * 1000:.1f} |")


if __name__ == "__main__":
    main()
