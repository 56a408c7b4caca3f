"""Client-side micro-batching: concurrent single-item calls become one `/score` request.

verl, slime, AReaL and OpenRLHF ask for one sample's reward at a time, from many threads
or tasks at once. Sent as they come, a GRPO group of 16 is 16 requests, and the server's
batch-level de-duplication never sees the group together. `Coalescer` collects the items
that arrive within `max_delay_s` (default 5 ms) of the first one, or up to `max_batch`,
sends them as one request, and hands each caller its own result.

Every call, sync or async, from any thread or event loop, goes through one event loop
running in a daemon thread of its own (one per process and configuration: `shared()`
makes a new one after a fork, so pickled adapters work in worker processes too).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from reward_client.client import RewardClient


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
        self._pending: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
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
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    # -- inside the coalescer's loop --

    def _submit(self, item: dict[str, Any]) -> concurrent.futures.Future[dict[str, Any]]:
        return asyncio.run_coroutine_threadsafe(self._enqueue(item), self._loop)

    async def _enqueue(self, item: dict[str, Any]) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pending.append((item, future))
        self.stats.calls += 1
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(self.max_delay_s, self._flush)
        return await future

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

    async def _send(
        self, batch: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]]
    ) -> None:
        try:
            results = await self.client.ascore([item for item, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


_SHARED: dict[tuple[int, str, float, int], Coalescer] = {}
_SHARED_LOCK = threading.Lock()


def shared(url: str, max_delay_s: float = 0.005, max_batch: int = 512) -> Coalescer:
    """The process's coalescer for `url` (a new one in a forked child)."""
    key = (os.getpid(), url, max_delay_s, max_batch)
    with _SHARED_LOCK:
        coalescer = _SHARED.get(key)
        if coalescer is None:
            coalescer = _SHARED[key] = Coalescer(url, max_delay_s=max_delay_s,
                                                 max_batch=max_batch)
        return coalescer
