"""Client-side micro-batching: concurrent single-item calls become one `/score` request.

verl, slime, AReaL and OpenRLHF ask for one sample's reward at a time, from many threads
or tasks at once. Sent as they come, a GRPO group of 16 is 16 requests, and the server's
batch-level de-duplication never sees the group together. `Coalescer` collects the items
that arrive within `max_delay_s` (default 5 ms) of the first one, or up to `max_batch`,
sends them as one request, and hands each caller its own result. The requests share one
connection (`RewardClient.connect`), so a request costs no new TCP connection.

Every call, sync or async, from any thread or event loop, goes through one event loop
running in a daemon thread of its own (one per process and configuration: `shared()`
makes a new one after a fork, so pickled adapters work in worker processes too).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import threading
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from reward_client.client import Connection, RewardClient

# A caller's result: a thread-safe future, settled from the coalescer's thread.
Result = concurrent.futures.Future[dict[str, Any]]


@dataclass
class CoalescerStats:
    calls: int = 0  # single-item calls received
    requests: int = 0  # `/score` requests sent


class Coalescer:
    """Groups concurrent `score_one` calls into `/score` requests (see the module doc)."""

    def __init__(self, url: str, *, max_delay_s: float = 0.005, max_batch: int = 512,
                 timeout_s: float = 300.0, retries: int = 5) -> None:
        self.url = url
        self.max_delay_s = max_delay_s
        self.max_batch = max_batch
        self.client = RewardClient(url, timeout_s=timeout_s, retries=retries,
                                   batch_size=max_batch)
        self.stats = CoalescerStats()
        self._pending: list[tuple[dict[str, Any], Result]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # One connection for every request, opened on first use: HTTP keep-alive (at most
        # the client's max_concurrency requests at once, the rest wait), or one gRPC channel.
        self._connection: Connection | None = None
        self._opening = asyncio.Lock()
        # Every caller's future until it is settled, so that `close` can fail them all.
        self._waiting: set[Result] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="reward-client-coalescer")
        self._thread.start()

    # -- public: any thread, any loop --

    def score_one(self, item: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        """The result of one item (blocks the calling thread)."""
        return self._submit(item).result(timeout_s)

    def score_one_async(self, item: dict[str, Any]) -> Awaitable[dict[str, Any]]:
        """The result of one item, awaitable in the caller's own event loop."""
        return asyncio.wrap_future(self._submit(item))

    def score_many(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Several items at once (they join whatever else is being coalesced)."""
        futures = [self._submit(item) for item in items]
        return [future.result() for future in futures]

    async def score_many_async(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self.score_one_async(item) for item in items)))

    def close(self) -> None:
        """Stop the coalescer: calls still waiting, and any later call, raise RuntimeError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiting = list(self._waiting)
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        self._thread.join(timeout=5)
        error = RuntimeError(f"the coalescer for {self.url} was closed before the item "
                             "was scored")
        for future in waiting:
            _settle(future, error=error)
        if not self._thread.is_alive():
            self._loop.close()

    def _submit(self, item: dict[str, Any]) -> Result:
        future: Result = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the coalescer for {self.url} is closed")
            self._waiting.add(future)
        future.add_done_callback(self._forget)
        self._loop.call_soon_threadsafe(self._enqueue, item, future)
        return future

    def _forget(self, future: Result) -> None:
        with self._lock:
            self._waiting.discard(future)

    # -- inside the coalescer's loop --

    def _enqueue(self, item: dict[str, Any], future: Result) -> None:
        self._pending.append((item, future))
        self.stats.calls += 1
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(self.max_delay_s, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            self.stats.requests += 1
            task = self._loop.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[dict[str, Any], Result]]) -> None:
        try:
            results = await self.client.ascore([item for item, _ in batch],
                                               connection=await self._open())
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
            for _, future in batch:
                _settle(future, error=exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)

    async def _open(self) -> Connection:
        async with self._opening:
            if self._connection is None:
                self._connection = await self.client.connect().__aenter__()
            return self._connection

    async def _shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._connection is not None:
            await self._connection.__aexit__(None, None, None)
        self._loop.stop()


def _settle(future: Result, result: dict[str, Any] | None = None,
            error: BaseException | None = None) -> None:
    """Give a caller its result or error, unless it has one or gave up (cancelled)."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]
    except concurrent.futures.InvalidStateError:
        pass


_SHARED: dict[tuple[int, str, float, int], Coalescer] = {}
_SHARED_LOCK = threading.Lock()


def shared(url: str, max_delay_s: float = 0.005, max_batch: int = 512) -> Coalescer:
    """The process's coalescer for `url` (a new one in a forked child); closed when the
    process exits (its keep-alive connections shut down, not dropped)."""
    key = (os.getpid(), url, max_delay_s, max_batch)
    with _SHARED_LOCK:
        coalescer = _SHARED.get(key)
        if coalescer is None:
            coalescer = _SHARED[key] = Coalescer(url, max_delay_s=max_delay_s,
                                                 max_batch=max_batch)
        return coalescer


@atexit.register
def _close_shared() -> None:
    with _SHARED_LOCK:
        mine = [c for key, c in _SHARED.items() if key[0] == os.getpid()]
    for coalescer in mine:
        coalescer.close()
