"""Throughput of the reward server on GRPO-shaped batches.

2,000 items of the simple answer types (multiple-choice, number, boolean, ocrtext, bbox,
any), in groups of 16 samples per prompt with realistic duplication (a group repeats a
few distinct answers), sent in batches of 8 groups (128 items). Scored (a) in process
through `Engine` and (b) over HTTP against a server started beside it, each first with a
cold verdict cache, then again warm (both once every worker has started and warmed up,
as `/health` reports). Both start each pass from the same plain items (the JSON objects
a trainer has made of its rollouts): in process, the pass builds the `ScoreItem`s of
each batch, as HTTP's pass encodes them and the server parses them.

The machine's speed drifts (a shared VM: the same pass can take twice as long a few
seconds later), so the modes run interleaved: in `--rounds` rounds, each with new items
(a new seed) and a fresh engine and server (empty caches), one cold pass of each mode,
then `--warm-passes` warm passes of each in turn, the order of the modes alternating
from round to round. The table gives medians over all passes of a mode (latency
percentiles over all their batches); each ratio is the median over pairs of passes, the
n-th pass of a mode against the n-th in process of the same round and cache, so it need
not equal the ratio of the medians. HTTP goes through `reward_client`'s transport
(`HttpConnection`, aiohttp), as a trainer's requests do, its connections kept open over
a round's passes (as a trainer keeps them over its steps), one request at a time
(as the in-process rows do) and also `--in-flight` requests at once, as
`reward_client` sends its chunks (4 by default): the client's own work then overlaps
the server's (that mode has a server of its own, so that its cold pass too starts from
an empty cache; the servers and the engine process of a round all stay up, the idle
ones waiting with their workers idle). Also printed: the CPU time per batch of the
process that runs the engine (this one, or the server; its verifier worker processes not
counted) and of the HTTP client, which shares the two cores: totals over all passes of a
mode (a server's CPU time is read in clock ticks of 10 ms: coarse for one pass).

    python bench/throughput.py [--items 2000] [--workers 2] [--groups-per-batch 8]
                               [--rounds 5] [--warm-passes 10] [--in-flight 4]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from reward_client.client import HttpConnection  # noqa: E402
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


@dataclass
class Pass:
    """One pass over the items: wall seconds, each batch's latency, CPU seconds of the
    engine's process and of the client (None in process)."""

    seconds: float
    latencies: list[float]
    engine_cpu_s: float
    client_cpu_s: float | None = None


def process_cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process_pass(engine: Engine, item_batches: list[list[dict[str, Any]]]) -> Pass:
    latencies = []
    start, cpu = time.perf_counter(), time.process_time()
    for batch in item_batches:
        t0 = time.perf_counter()
        engine.score_sync([ScoreItem(**item) for item in batch])
        latencies.append(time.perf_counter() - t0)
    return Pass(time.perf_counter() - start, latencies, time.process_time() - cpu)


def _serve_passes(conn: Connection, workers: int) -> None:
    """The in-process side: an `Engine` in a process of its own (not the HTTP client's,
    whose event loop would share the GIL with the engine's pool threads), which runs a
    pass for each list of batches it receives, until it receives None."""
    with Engine(Settings(workers=workers)) as engine:
        while engine.health()["worker_start_s"] is None:
            time.sleep(0.1)  # the workers are still starting and warming up
        conn.send("ready")
        while (item_batches := conn.recv()) is not None:
            conn.send(in_process_pass(engine, item_batches))


@contextmanager
def engine_process(workers: int) -> Iterator[Callable[[list[ScoreItem]], Pass]]:
    """A started engine process (ready to score); yields: items -> their in-process pass."""
    context = multiprocessing.get_context("spawn")
    conn, child = context.Pipe()
    process = context.Process(target=_serve_passes, args=(child, workers))
    process.start()
    child.close()  # the child's end lives in the child only: its exit is our EOF

    def answer() -> Any:
        try:
            return conn.recv()
        except EOFError:
            process.join(10)
            raise RuntimeError(f"the engine process exited with {process.exitcode}") from None

    try:
        if answer() != "ready":
            raise RuntimeError("the engine process did not start")

        def one_pass(items: list[ScoreItem]) -> Pass:
            conn.send([[as_json(item) for item in batch] for batch in batches(items)])
            result: Pass = answer()
            return result

        yield one_pass
        conn.send(None)
        process.join(60)
    finally:
        if process.is_alive():
            process.kill()


async def _post_all(client: HttpConnection, items: list[ScoreItem], in_flight: int) -> Pass:
    """All batches through `reward_client`'s HTTP transport (as a trainer sends them), at
    most `in_flight` requests at once (the server's CPU not filled in)."""
    latencies = []
    limiter = asyncio.Semaphore(in_flight)
    chunks = [[as_json(i) for i in batch] for batch in batches(items)]

    async def post(chunk: list[dict[str, Any]]) -> None:
        async with limiter:
            t0 = time.perf_counter()
            results = await client.score(chunk)
            assert len(results) == len(chunk)
            latencies.append(time.perf_counter() - t0)

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(post(chunk) for chunk in chunks))
    return Pass(time.perf_counter() - start, latencies, 0.0, time.process_time() - cpu)


@dataclass
class HttpClient:
    """A server's client for a whole round: its event loop and keep-alive connections
    stay open from pass to pass, as a trainer's stay open from step to step."""

    runner: asyncio.Runner
    connection: HttpConnection
    pid: int  # the server's
    in_flight: int

    def one_pass(self, items: list[ScoreItem]) -> Pass:
        server_cpu = process_cpu_s(self.pid)
        result = self.runner.run(_post_all(self.connection, items, self.in_flight))
        result.engine_cpu_s = process_cpu_s(self.pid) - server_cpu
        return result


@contextmanager
def http_client(runner: asyncio.Runner, url: str, pid: int,
                in_flight: int) -> Iterator[HttpClient]:
    connection = HttpConnection(url, timeout_s=120, max_connections=in_flight,
                                batch_size=GROUP * GROUPS_PER_BATCH)
    runner.run(connection.__aenter__())
    try:
        yield HttpClient(runner, connection, pid, in_flight)
    finally:
        runner.run(connection.__aexit__(None, None, None))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(count: int, workers: int, rounds: int, in_flight: int,
        warm_passes: int) -> dict[str, list[Pass]]:
    """Every pass of every round, by mode; the modes interleaved (see the docstring)."""
    passes: dict[str, list[Pass]] = {}
    for round_ in range(rounds):
        # a fresh engine and servers each round: the cold passes start from empty caches
        with ExitStack() as stack:
            in_process = stack.enter_context(engine_process(workers))
            servers = [stack.enter_context(server_process({"REWARD_WORKERS": str(workers)},
                                                          startup_s=180))
                       for _ in range(2 if in_flight > 1 else 1)]
            for server in servers:
                while httpx.get(server.url + "/health",
                                timeout=10).json()["worker_start_s"] is None:
                    time.sleep(0.1)  # the workers are still starting and warming up
            runner = stack.enter_context(asyncio.Runner())
            clients = [stack.enter_context(http_client(runner, s.url, s.process.pid, flight))
                       for s, flight in zip(servers, (1, in_flight), strict=False)]
            one_round(in_process, clients, make_items(count, seed=round_), warm_passes,
                      reverse=round_ % 2 == 1, passes=passes)
    return passes


def one_round(in_process: Callable[[list[ScoreItem]], Pass], clients: list[HttpClient],
              items: list[ScoreItem], warm_passes: int, reverse: bool,
              passes: dict[str, list[Pass]]) -> None:
    """A cold pass of each mode, then `warm_passes` of each in turn, into `passes`; the
    HTTP modes each with a server of its own."""
    modes = {"in process": lambda: in_process(items)}
    for client in clients:
        name = "HTTP" if client.in_flight == 1 else f"HTTP, {client.in_flight} in flight"
        modes[name] = functools.partial(client.one_pass, items)
    order = list(reversed(modes)) if reverse else list(modes)
    for cache, repeats in (("cold", 1), ("warm", warm_passes)):
        for _ in range(repeats):
            for mode in order:
                name, _, flight = mode.partition(", ")
                label = f"{name}, {cache} cache" + (f", {flight}" if flight else "")
                passes.setdefault(label, []).append(modes[mode]())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--groups-per-batch", type=int, default=GROUPS_PER_BATCH,
                        help="groups of 16 per request (the recipe's batch is 32 prompts)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warm-passes", type=int, default=10,
                        help="warm passes of each mode a round, interleaved")
    parser.add_argument("--in-flight", type=int, default=4,
                        help="requests at once in the extra warm HTTP row (reward_client's "
                        "max_concurrency); 1 leaves the row out")
    args = parser.parse_args()
    globals()["GROUPS_PER_BATCH"] = args.groups_per_batch
    items = make_items(args.items)
    distinct = len({(i.answer_type, i.response, str(i.answer)) for i in items})
    print(f"{len(items)} items a round, {distinct} distinct (answer, reference) pairs in the "
          f"first, batches of {GROUP * GROUPS_PER_BATCH}, {args.workers} workers, "
          f"{args.rounds} rounds\n")
    passes = run(args.items, args.workers, args.rounds, args.in_flight, args.warm_passes)
    print("| mode | items/s | batch p50 ms | batch p99 ms | engine process CPU ms/batch "
          "| client CPU ms/batch |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    rates = {label: [len(items) / p.seconds for p in runs] for label, runs in passes.items()}
    for label, runs in passes.items():
        latencies = [t for p in runs for t in p.latencies]
        per_batch = len(runs[0].latencies)
        all_batches = per_batch * len(runs)
        engine_cpu = sum(p.engine_cpu_s for p in runs) / all_batches * 1000
        client = "" if runs[0].client_cpu_s is None else (
            f"{sum(p.client_cpu_s or 0.0 for p in runs) / all_batches * 1000:.2f}")
        print(f"| {label} | {statistics.median(rates[label]):,.0f} | "
              f"{statistics.median(latencies) * 1000:.1f} | "
              f"{percentile(latencies, 0.99) * 1000:.1f} | {engine_cpu:.2f} | {client} |")
    print()
    for label in rates:
        if label.startswith("HTTP"):
            cache = "cold" if "cold" in label else "warm"
            base = rates[f"in process, {cache} cache"]
            share = statistics.median(h / b for h, b in zip(rates[label], base, strict=True))
            print(f"{label}: {share:.0%} of the in-process rate (median of {len(base)} "
                  "interleaved pairs of passes)")
    print(f"\nload average (1, 5, 15 min) at the end: "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
