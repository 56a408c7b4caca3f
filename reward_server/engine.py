"""The worker engine: score a batch of items, nothing hangs, nothing is lost.

Contract
- Each item's `extract` runs in the calling process (cheap, linear-time text work); its
  `compare` runs in a pool of worker processes (pebble) under a hard per-item timeout.
  A worker that overruns is killed and replaced; that item gets status `timeout` and
  reward 0; the rest of the batch is unaffected. A worker that dies (segfault, OOM kill)
  gives `error`. An exception in a verifier gives `error` with its message.
- An item that overruns (killed, or its verifier reports `timeout`) is verified once more,
  alone, under a CPU-time budget (`reward_server.overrun`): a response that is itself too
  costly to verify is `rejected` (reward 0, scored as a wrong answer); one that overran
  because the machine was overloaded stays `timeout`. A verifier's own guard refusing a
  response (too long, nested too deep) is `rejected` too.
- Identical (answer type, verifier version, extracted answer, reference, options,
  choices) keys are verified once: across the batch, across concurrent batches (in-flight
  table), and across time (the local verdict cache, then, with `REWARD_REDIS_URL`, the
  cache shared by every replica: looked up by `score` for the local misses before
  scheduling, written through after). Results repeat the verdict with `cached: true`.
  `score_sync` uses the local cache only (the shared one is asyncio).
- Results come back in request order, one per item, always the same shape.
- Each worker process is a pool of its own and runs one item at a time; the items wait
  in the engine's queue. A free worker takes the oldest item of a reference (a GRPO
  group) whose home it is, so its per-process caches (a parsed math gold, a rendered
  reference page) serve the whole group and later epochs; with none of its own waiting
  it takes the oldest item of any group, so no item waits behind a slow one while a
  worker is free.
- Each worker, with every process it starts (Chromium), may add at most
  `REWARD_WORKER_MEMORY_MB` to what it inherits (`reward_server.memory`): an item that
  needs more is killed with its worker and gets `error`.
- Workers warm up as they start, before they take an item (imports, then each verifier
  module's optional `warm_up()`: Math-Verify's parser, Chromium's launch), so a fresh or
  replaced worker's first item does not pay for it under the item timeout. `health()`
  says how many workers are ready and how long their start took.
- Cancelling `score` (a client gone, a deadline passed) drops the verifications that no
  other call is waiting for: queued ones never start, running ones have their worker
  stopped, so abandoned work does not keep workers busy.

The worker pool covers time and crashes, not hostile system access: verifiers must not
execute model output themselves; `general-code` runs programs only through
`reward_server.sandbox` (bubblewrap), and `health()` says whether that sandbox starts.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import importlib
import logging
import math
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pebble import ProcessExpired, ProcessPool

from reward_server import registry, sandbox
from reward_server import settings as settings_module
from reward_server.cache import LRUVerdictCache, VerdictCache, verdict_key
from reward_server.extraction import format_reward, think_has_box
from reward_server.memory import MEMORY_CAP_MESSAGE, MEMORY_EXIT_CODE, cap_worker_memory
from reward_server.metrics import CacheMode, EngineMetrics
from reward_server.overrun import RetryPool, retry_verdict
from reward_server.redis_cache import RedisVerdictCache
from reward_server.settings import Settings
from reward_server.types import ItemContext, ScoreItem, ScoreResult, Verdict, canonical_json

log = logging.getLogger(__name__)

_Futures = dict[str, concurrent.futures.Future[Verdict]]
_Verdicts = dict[str, Verdict]

SPATIAL_PROBLEM_TYPE = "spatial-reasoning"
# What the caches keep: the response's own verdicts (a rejection is the response's too);
# timeouts and errors may come from load, so they are verified again next time.
CACHED_STATUSES = ("ok", "rejected")
# A batch of at most INLINE_ITEMS items whose text (responses, references, choices) holds
# at most INLINE_TEXT_CHARS characters in all is extracted on the event loop (extraction is
# linear: a few milliseconds at worst); any other in a thread.
INLINE_ITEMS = 256
INLINE_TEXT_CHARS = 16_384


# Seconds the worker's initializer spent warming up (set in the worker process).
_warmup_seconds: float | None = None


def _preload(modules: tuple[str, ...], warm_up: bool, settings: Settings) -> None:
    """Worker initializer: adopt the engine's settings, cap the worker's memory
    (`reward_server.memory`), import the verifier modules once, not on the first item, and
    run their `warm_up()` when asked.

    A module that fails to import or warm up must not take the pool down (pebble expires
    every worker whose initializer raises): its items will report the error instead.
    """
    global _warmup_seconds
    start = time.perf_counter()
    settings_module.adopt(settings)
    cap_worker_memory(settings.worker_memory_mb)
    for module in modules:
        try:
            loaded = importlib.import_module(module)
            hook = getattr(loaded, "warm_up", None) if warm_up else None
            if hook is not None:
                hook()
        except Exception:  # noqa: BLE001
            log.exception("could not preload verifier module %s", module)
    _warmup_seconds = time.perf_counter() - start


def _warmup_report() -> float | None:
    """What a worker answers once it is up: how long its warm-up took."""
    return _warmup_seconds


def _run_compare(
    module: str, extracted: str, reference: Any, options: Any, context: ItemContext
) -> Verdict:
    """What a worker runs for one item."""
    verdict = importlib.import_module(module).compare(extracted, reference, options, context)
    if not isinstance(verdict, Verdict):
        raise TypeError(f"{module}.compare returned {type(verdict).__name__}, not Verdict")
    return verdict


@dataclass
class _Task:
    """A verification waiting in the engine's queue, then running on one worker."""

    key: str
    home: int  # the worker whose caches this group's items use
    args: tuple[Any, ...]
    future: concurrent.futures.Future[Verdict]  # what callers wait on
    running: Any = None  # pebble's future, once a worker took it


@dataclass
class _Pending:
    """An item waiting for a verdict: everything needed to compose its result."""

    index: int
    item: ScoreItem
    options: Any
    extracted: str
    key: str
    group: int  # stable hash of (answer type, reference): the worker it goes to
    cached_verdict: Verdict | None = None


class Engine:
    def __init__(
        self,
        settings: Settings | None = None,
        cache: VerdictCache | None = None,
        shared: RedisVerdictCache | None = None,
    ):
        self.settings = settings or Settings()
        self.cache: VerdictCache = cache if cache is not None else LRUVerdictCache(
            self.settings.cache_size
        )
        self.shared = shared if shared is not None else _shared_cache(self.settings)
        self._lock = threading.Lock()
        self._inflight: dict[str, concurrent.futures.Future[Verdict]] = {}
        self._retrying: dict[str, concurrent.futures.Future[Verdict]] = {}
        # How many calls wait on each in-flight key: a cancelled call may only drop a
        # verification nobody else shares.
        self._waiters: collections.Counter[str] = collections.Counter()
        self.metrics = EngineMetrics(self.cache_state, lambda: len(self._inflight))
        for name in registry.names():  # hash the verifiers' code now, not in a request
            registry.get(name).code_version  # noqa: B018
        self._pools = [self._new_pool() for _ in range(self.settings.workers)]
        self._queue: collections.deque[_Task] = collections.deque()
        self._busy: list[_Task | None] = [None] * len(self._pools)
        self._started_at = time.perf_counter()
        self._ready: list[tuple[float, float | None]] = []  # (start s, warm-up s) per worker
        for pool in self._pools:
            pool.schedule(_warmup_report).add_done_callback(self._worker_ready)
        self._retry_pool = RetryPool(self.settings)

    # -- pool -----------------------------------------------------------------------------

    def _new_pool(self) -> ProcessPool:
        modules = tuple(sorted({registry.get(name).module for name in registry.names()}))
        return ProcessPool(
            max_workers=1, initializer=_preload,
            initargs=(modules, self.settings.warm_up, self.settings),
        )

    def _worker_ready(self, future: concurrent.futures.Future[float | None]) -> None:
        elapsed = time.perf_counter() - self._started_at
        try:
            warmup = future.result()
        except Exception as exc:  # noqa: BLE001 - a worker that died starting is replaced
            log.warning("a worker failed to start: %s", exc)
            return
        with self._lock:
            self._ready.append((elapsed, warmup))

    def _schedule(self, pending: _Pending) -> concurrent.futures.Future[Verdict]:
        """The future verdict for a key, sharing one already in flight."""
        with self._lock:
            self._waiters[pending.key] += 1
            future = self._inflight.get(pending.key)
            if future is not None:
                return future
            future = concurrent.futures.Future()
            args = (registry.get(pending.item.answer_type).module, pending.extracted,
                    pending.item.answer, pending.options, pending.item.context)
            task = _Task(pending.key, pending.group % len(self._pools), args, future)
            self._inflight[pending.key] = future
            self._queue.append(task)
            started = self._dispatch()
        scheduled = time.perf_counter()
        future.add_done_callback(lambda f, key=pending.key: self._forget(key, f))
        future.add_done_callback(lambda f, task=task: self._stop_if_cancelled(task))
        future.add_done_callback(
            lambda f, kind=pending.item.answer_type: self._observe(f, kind, scheduled)
        )
        self._watch(started)
        return future

    def _dispatch(self) -> list[tuple[int, _Task]]:
        """Give each free worker its next task (lock held); the caller `_watch`es them."""
        started = []
        for worker, current in enumerate(self._busy):
            task = None if current is not None else self._next_task(worker)
            if task is None:
                continue
            if not self._pools[worker].active:
                log.warning("worker pool was stopped; starting a new one")
                self._pools[worker] = self._new_pool()
                self.metrics.worker_restarts.labels("pool").inc()
            task.running = self._pools[worker].schedule(
                _run_compare, args=task.args, timeout=self.settings.item_timeout_s)
            self._busy[worker] = task
            started.append((worker, task))
        return started

    def _next_task(self, worker: int) -> _Task | None:
        """The oldest waiting task whose home is `worker`, else the oldest of any group."""
        while self._queue and self._queue[0].future.cancelled():
            self._queue.popleft()
        chosen = next((t for t in self._queue if t.home == worker
                       and not t.future.cancelled()), None)
        if chosen is None and self._queue:
            chosen = self._queue[0]
        if chosen is not None:
            self._queue.remove(chosen)
        return chosen

    def _watch(self, started: list[tuple[int, _Task]]) -> None:
        # outside the lock: a callback on a future that is already done runs at once
        for worker, task in started:
            task.running.add_done_callback(
                lambda running, worker=worker, task=task: self._finished(worker, task, running))

    def _finished(self, worker: int, task: _Task, running: Any) -> None:
        with self._lock:
            self._busy[worker] = None
            started = self._dispatch()
        self._watch(started)
        if task.future.done():
            return  # cancelled by its callers while it ran
        try:
            if running.cancelled():
                task.future.cancel()
            elif running.exception() is not None:
                task.future.set_exception(running.exception())
            else:
                task.future.set_result(running.result())
        except concurrent.futures.InvalidStateError:
            pass  # cancelled by its callers just now

    @staticmethod
    def _stop_if_cancelled(task: _Task) -> None:
        """A cancelled task that a worker is running: stop that worker (pebble kills it)."""
        if task.future.cancelled() and task.running is not None:
            task.running.cancel()

    def _observe(
        self, future: concurrent.futures.Future[Verdict], answer_type: str, started: float
    ) -> None:
        self.metrics.verify_seconds.labels(answer_type).observe(time.perf_counter() - started)
        failure = None if future.cancelled() else future.exception()
        if isinstance(failure, TimeoutError):  # pebble killed the worker and starts another
            self.metrics.worker_kills.inc()
            self.metrics.worker_restarts.labels("timeout").inc()
        elif isinstance(failure, ProcessExpired):
            self.metrics.worker_restarts.labels("died").inc()

    def _forget(self, key: str, future: concurrent.futures.Future[Verdict]) -> None:
        with self._lock:
            if self._inflight.get(key) is future:
                del self._inflight[key]
                self._waiters.pop(key, None)

    def _abandon(self, futures: _Futures) -> None:
        """A call stopped waiting for `futures`: cancel those no other call waits for."""
        dropped = []
        with self._lock:
            for key, future in futures.items():
                if self._inflight.get(key) is not future:
                    continue
                self._waiters[key] -= 1
                if self._waiters[key] <= 0:
                    del self._inflight[key], self._waiters[key]
                    dropped.append(future)
        for future in dropped:  # outside the lock: cancel() runs the done callbacks
            future.cancel()

    def _retry(self, pending: list[_Pending], verdicts: _Verdicts) -> _Futures:
        """Second tries, alone on a CPU budget, of the keys that overran (see overrun.py);
        a key already being retried for another batch shares that retry."""
        overran = {key for key, verdict in verdicts.items() if verdict.status == "timeout"}
        retries: _Futures = {}
        for entry in pending:
            if entry.key not in overran or entry.key in retries:
                continue
            with self._lock:
                future = self._retrying.get(entry.key)
                if future is None:
                    future = self._retry_pool.schedule(
                        registry.get(entry.item.answer_type).module, entry.extracted,
                        entry.item.answer, entry.options, entry.item.context)
                    self._retrying[entry.key] = future
                    future.add_done_callback(
                        lambda _f, key=entry.key: self._retrying.pop(key, None))
            retries[entry.key] = future
        return retries

    def _retried(self, verdicts: _Verdicts, retries: _Futures) -> _Verdicts:
        budget = self.settings.item_timeout_s
        return {**verdicts, **{key: retry_verdict(f, budget) for key, f in retries.items()}}

    def close(self) -> None:
        with self._lock:
            waiting, self._queue = list(self._queue), collections.deque()
        for task in waiting:
            task.future.cancel()
        for pool in self._pools:
            pool.stop()
        for pool in self._pools:
            pool.join(timeout=10)
        self._retry_pool.close()

    async def aclose(self) -> None:
        """`close`, after closing the shared cache's connections (from the loop using them)."""
        if self.shared is not None:
            await self.shared.aclose()
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cache_state(self) -> CacheMode:
        """`local` without a shared cache, else the shared cache's `ok` or `degraded`."""
        return "local" if self.shared is None else self.shared.state

    def health(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"local": self.cache.stats()}
        if self.shared is not None:
            stats["redis"] = self.shared.stats()
        with self._lock:
            inflight = len(self._inflight)
            queued = len(self._queue)
            ready = list(self._ready)
        warmups = [w for _, w in ready if w is not None]
        return {
            "workers": self.settings.workers,
            "pool_active": all(pool.active for pool in self._pools),
            "inflight": inflight,
            "queued": queued,
            "workers_ready": len(ready),
            # seconds from the engine's start until its last worker was ready, and the
            # longest warm-up inside a worker (None until every worker has started)
            "worker_start_s": max(s for s, _ in ready) if len(ready) == len(self._pools)
            else None,
            "warmup_s": max(warmups) if warmups and len(ready) == len(self._pools) else None,
            "item_timeout_s": self.settings.item_timeout_s,
            "cache": self.cache_state(),
            "cache_stats": stats,
            "code_sandbox": self._code_sandbox(),
        }

    def _code_sandbox(self) -> dict[str, Any]:
        """Whether general-code items can run (probed once per process)."""
        config = sandbox.SandboxConfig(
            self.settings.code_python, self.settings.code_uid, self.settings.code_gid
        )
        return sandbox.status(config)

    # -- scoring --------------------------------------------------------------------------

    def score_sync(self, items: Sequence[ScoreItem]) -> list[ScoreResult]:
        results, pending, futures = self._start(items)
        concurrent.futures.wait(futures.values())
        verdicts = {key: _verdict_of(future) for key, future in futures.items()}
        retries = self._retry(pending, verdicts)
        concurrent.futures.wait(retries.values())
        return self._counted(items, self._collect(results, pending,
                                                  self._retried(verdicts, retries)))

    async def score(self, items: Sequence[ScoreItem],
                    size_bound: int | None = None) -> list[ScoreResult]:
        """Score `items`. `size_bound`, when the caller knows one: at most how many
        characters the items take (a request body's length); within `INLINE_TEXT_CHARS`,
        it makes the batch `_short` without counting its text."""
        short = (size_bound is not None and size_bound <= INLINE_TEXT_CHARS
                 and len(items) <= INLINE_ITEMS) or _short(items)
        if self.shared is None and short:
            results, pending, futures = self._start(items)  # no await: nothing to cancel
        else:
            # shielded: a call cancelled while the thread schedules still abandons its futures
            start = asyncio.ensure_future(self._begin(items, short))
            try:
                results, pending, futures = await asyncio.shield(start)
            except asyncio.CancelledError:
                start.add_done_callback(
                    lambda task: task.cancelled() or task.exception()
                    or self._abandon(task.result()[2])
                )
                raise
        try:
            await _all_done(futures)
        except asyncio.CancelledError:
            self._abandon(futures)
            raise
        verdicts = {key: _verdict_of(future) for key, future in futures.items()}
        retries = self._retry(pending, verdicts)
        # a retry is bounded by its own limits: a cancelled call leaves it to finish (and
        # to be shared by another call retrying the same key)
        await _all_done(retries)
        final = self._retried(verdicts, retries)
        scored = self._collect(results, pending, final)
        if self.shared is not None:
            await self.shared.put_many(
                {key: v for key, v in final.items() if v.status in CACHED_STATUSES}
            )
        return self._counted(items, scored)

    async def _begin(
        self, items: Sequence[ScoreItem], short: bool
    ) -> tuple[list[ScoreResult | None], list[_Pending], _Futures]:
        """`_start`, with the shared cache asked between the local cache and scheduling.

        Extraction runs in a thread, off the event loop, unless the batch is `_short`."""
        if self.shared is None:
            return await asyncio.to_thread(self._start, items)  # `score` did the short ones
        results, pending = (self._prepare_batch(items) if short
                            else await asyncio.to_thread(self._prepare_batch, items))
        await self._look_up_shared(pending)
        return results, pending, self._schedule_misses(pending)

    def _start(
        self, items: Sequence[ScoreItem]
    ) -> tuple[list[ScoreResult | None], list[_Pending], _Futures]:
        """Extract every answer, answer what needs no worker, schedule the rest."""
        results, pending = self._prepare_batch(items)
        return results, pending, self._schedule_misses(pending)

    def _prepare_batch(
        self, items: Sequence[ScoreItem]
    ) -> tuple[list[ScoreResult | None], list[_Pending]]:
        """Extract every answer, answer what needs no verdict, look up the local cache."""
        results: list[ScoreResult | None] = [None] * len(items)
        pending: list[_Pending] = []
        looked_up: dict[str, Verdict | None] = {}
        for index, item in enumerate(items):
            prepared = self._prepare(index, item)
            if isinstance(prepared, ScoreResult):
                results[index] = prepared
                continue
            pending.append(prepared)
            if prepared.key not in looked_up:
                looked_up[prepared.key] = self.cache.get(prepared.key)
            prepared.cached_verdict = looked_up[prepared.key]
        self.metrics.cache_hits.labels("local").inc(
            sum(v is not None for v in looked_up.values())
        )
        return results, pending

    async def _look_up_shared(self, pending: list[_Pending]) -> None:
        """Fill the local misses from the shared cache (and keep its verdicts locally)."""
        assert self.shared is not None
        missing = list(dict.fromkeys(e.key for e in pending if e.cached_verdict is None))
        found = await self.shared.get_many(missing)
        self.metrics.cache_hits.labels("redis").inc(len(found))
        for key, verdict in found.items():
            self.cache.put(key, verdict)
        for entry in pending:
            if entry.cached_verdict is None:
                entry.cached_verdict = found.get(entry.key)

    def _schedule_misses(self, pending: list[_Pending]) -> _Futures:
        futures: _Futures = {}
        for entry in pending:
            if entry.cached_verdict is None and entry.key not in futures:
                futures[entry.key] = self._schedule(entry)
        self.metrics.cache_misses.inc(len(futures))
        return futures

    def _counted(self, items: Sequence[ScoreItem], scored: list[ScoreResult]) -> list[ScoreResult]:
        known = set(registry.names())
        self.metrics.count_items(
            (i.answer_type if i.answer_type in known else "unknown" for i in items),
            [r.status for r in scored],
        )
        return scored

    def _collect(
        self,
        results: list[ScoreResult | None],
        pending: list[_Pending],
        verdicts: _Verdicts,
    ) -> list[ScoreResult]:
        """Results for the scheduled items; repeats of a key in the batch are `cached`."""
        verified: set[str] = set()
        for entry in pending:
            if entry.cached_verdict is not None:
                results[entry.index] = self._finish(entry, entry.cached_verdict, cached=True)
                continue
            repeat = entry.key in verified
            verified.add(entry.key)
            results[entry.index] = self._finish(entry, verdicts[entry.key], cached=repeat)
        return [r for r in results if r is not None]

    def _prepare(self, index: int, item: ScoreItem) -> _Pending | ScoreResult:
        try:
            spec = registry.get(item.answer_type)
        except KeyError as exc:
            return self._error_result(item, str(exc).strip("'\""))
        try:
            options = registry.build_options(item.answer_type, item.options)
            extracted = spec.load().extract(item.response, options, item.context)
        except registry.OptionsError as exc:
            return self._error_result(item, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bad extract must not take the batch down
            log.exception("extract failed for item %d (%s)", index, item.answer_type)
            return self._error_result(item, f"extract failed: {type(exc).__name__}: {exc}")
        if extracted is None:
            return self._compose(item, options, None, Verdict(0.0, status="no_answer",
                                                            message="no answer found"), False)
        reference = canonical_json(item.answer)
        key = verdict_key(
            item.answer_type,
            spec.code_version,
            extracted,
            reference,
            _options_json(options),
            canonical_json(item.choices),
        )
        group = zlib.crc32(f"{item.answer_type}\x00{reference}".encode("utf-8", "surrogatepass"))
        return _Pending(index, item, options, extracted, key, group)

    def _finish(self, entry: _Pending, verdict: Verdict, cached: bool) -> ScoreResult:
        if verdict.status in CACHED_STATUSES and not cached:
            self.cache.put(entry.key, verdict)  # a rejection is the response's: keep it
        return self._compose(entry.item, entry.options, entry.extracted, verdict, cached)

    def _compose(
        self, item: ScoreItem, options: Any, extracted: str | None, verdict: Verdict, cached: bool
    ) -> ScoreResult:
        fmt = format_reward(item.response, item.context.chain_of_thought)
        verdict = _finite(verdict)
        components = dict(verdict.components)
        if verdict.status != "ok":
            return ScoreResult(item.id, 0.0, 0.0, fmt, components, extracted, verdict.status,
                               verdict.message, cached)
        acc = min(1.0, max(0.0, float(verdict.score)))
        reward = acc
        if item.problem_type == SPATIAL_PROBLEM_TYPE:
            bonus = self.settings.spatial_bonus if think_has_box(item.response) else 0.0
            components["spatial_bonus"] = bonus
            reward += bonus
        weight = options.format_weight
        reward += (self.settings.format_weight if weight is None else weight) * fmt
        return ScoreResult(item.id, reward, acc, fmt, components, extracted, "ok", None, cached)

    def _error_result(self, item: ScoreItem, message: str) -> ScoreResult:
        fmt = format_reward(item.response, item.context.chain_of_thought)
        return ScoreResult(item.id, 0.0, 0.0, fmt, {}, None, "error", message, False)


@functools.lru_cache(maxsize=1024)
def _options_json(options: Any) -> str:
    """The cache-key text of a verifier's (frozen, hashable) options: once per options."""
    return canonical_json(dataclasses.asdict(options))


def _short(items: Sequence[ScoreItem]) -> bool:
    """Whether the batch is so small that handing its extraction to a thread would cost
    more than the work it moves off the event loop (see `INLINE_TEXT_CHARS`). Stops
    counting as soon as it is not: the count itself must stay cheap."""
    if len(items) > INLINE_ITEMS:
        return False
    budget = INLINE_TEXT_CHARS
    for item in items:
        answer = item.answer
        budget -= len(item.response) + (len(answer) if type(answer) is str
                                        else _text_size(answer, budget))
        budget -= _text_size(item.choices, budget) if item.choices else 2  # "[]"
        if budget < 0:
            return False
    return True


def _text_size(value: Any, budget: int) -> int:
    """About how many characters `value` (a reference: text, a number, nested lists) takes,
    counted only until it is over `budget`."""
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, list | tuple):
        return 8
    size = 2
    for element in value:
        size += _text_size(element, budget - size) + 1
        if size > budget:
            break
    return size


async def _all_done(futures: _Futures) -> None:
    """Wait for every future, woken once when the last is done (not once per future: each
    wake-up from a worker's thread costs the event loop a self-pipe round).

    Cancelling this call does not cancel the futures, which other calls may share
    (`Engine._abandon` decides); failures are read from the futures afterwards."""
    if not futures:
        return
    distinct = list(dict.fromkeys(futures.values()))
    loop = asyncio.get_running_loop()
    all_done: asyncio.Future[None] = loop.create_future()
    remaining = len(distinct)
    lock = threading.Lock()

    def one_done(_: concurrent.futures.Future[Verdict]) -> None:
        nonlocal remaining
        with lock:
            remaining -= 1
            if remaining:
                return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(_set_done, all_done)

    for future in distinct:
        future.add_done_callback(one_done)  # runs at once for a future already done
    await all_done


def _set_done(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # a cancelled call's waiter stays cancelled
        waiter.set_result(None)


def _finite(verdict: Verdict) -> Verdict:
    """The verdict, or an `error` one when its score or a component is not a finite number
    (a NaN reward would crash a trainer's arithmetic and is not JSON)."""
    numbers = [verdict.score, *verdict.components.values()]
    if all(isinstance(x, int | float) and math.isfinite(x) for x in numbers):
        return verdict
    return Verdict(0.0, status="error", message="the verifier returned a non-finite score")


def _verdict_of(future: concurrent.futures.Future[Verdict]) -> Verdict:
    """The verdict of a finished future; failures become `timeout` or `error` verdicts."""
    try:
        return future.result()
    except TimeoutError:
        return Verdict(0.0, status="timeout", message="verifier exceeded the item timeout")
    except ProcessExpired as exc:
        if exc.exitcode == MEMORY_EXIT_CODE:
            return Verdict(0.0, status="error", message=MEMORY_CAP_MESSAGE)
        return Verdict(0.0, status="error", message=f"verifier worker died: {exc}")
    except concurrent.futures.CancelledError:
        return Verdict(0.0, status="error", message="verification was cancelled")
    except Exception as exc:  # noqa: BLE001 - the verifier raised: report it on this item only
        return Verdict(0.0, status="error", message=f"{type(exc).__name__}: {exc}")


def _shared_cache(settings: Settings) -> RedisVerdictCache | None:
    if settings.redis_url is None:
        return None
    return RedisVerdictCache(settings.redis_url, settings.redis_ttl_s, settings.redis_timeout_s)
