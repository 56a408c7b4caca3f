"""The shared verdict cache: one Redis under every replica's local LRU.

Contract
- `get_many(keys)` returns the verdicts Redis holds for those keys (one MGET);
  `put_many(verdicts)` writes them, each with the TTL (one pipeline, no transaction).
  The keys are the engine's verdict keys, which carry the verifier's code version
  (`VerifierSpec.code_version`): a changed verifier never reads its old code's verdicts.
- Never a failed request because of Redis. Every call is bounded by `timeout_s`; an error
  or an overrun turns the cache `degraded` (logged once) and answers "nothing known" /
  drops the write. While degraded, calls are skipped without touching the network and a
  background task pings Redis every `retry_s` on fresh connections; its first answer
  turns the cache `ok` again (logged once).
- A verdict read back equals the one written (score, components, status, message as
  JSON); the engine writes `ok` and `rejected` verdicts only.
  Values that do not parse (a foreign writer) count as misses.
- The asyncio client belongs to the event loop that first used it; a call from another
  loop (a restarted app, tests) opens a fresh client there.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from reward_server.types import Verdict

log = logging.getLogger(__name__)

CacheState = Literal["ok", "degraded"]
KEY_PREFIX = "reward:verdict:"
_T = TypeVar("_T")
# What a failing Redis call raises: protocol and connection errors, socket errors, and
# our own deadline.
_FAILURES = (RedisError, OSError, TimeoutError)


class RedisVerdictCache:
    def __init__(
        self, url: str, ttl_s: int, timeout_s: float, retry_s: float = 1.0,
        prefix: str = KEY_PREFIX,
    ) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.prefix = prefix
        self.state: CacheState = "ok"
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self._client: Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._probe: asyncio.Task[None] | None = None

    @property
    def where(self) -> str:
        """The server's address for logs, without credentials."""
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or 6379}"

    def stats(self) -> dict[str, Any]:
        return {"state": self.state, "hits": self.hits, "misses": self.misses,
                "errors": self.errors}

    # -- the two calls the engine makes ------------------------------------------------

    async def get_many(self, keys: Sequence[str]) -> dict[str, Verdict]:
        """The verdicts Redis knows among `keys` (a subset; empty when degraded)."""
        if not keys or not self._usable():
            return {}
        names = [self.prefix + key for key in keys]
        values = await self._call(lambda redis: redis.mget(names))
        if values is None:
            return {}
        found = {}
        for key, raw in zip(keys, values, strict=True):
            verdict = _load(raw) if raw is not None else None
            if verdict is not None:
                found[key] = verdict
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    async def put_many(self, verdicts: Mapping[str, Verdict]) -> None:
        """Write-through of fresh verdicts; dropped (not retried) when Redis fails."""
        if not verdicts or not self._usable():
            return

        async def write(redis: Redis) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                for key, verdict in verdicts.items():
                    pipe.set(self.prefix + key, _dump(verdict), ex=self.ttl_s)
                await pipe.execute()

        await self._call(write)

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await _close_quietly(client)

    # -- failure handling ----------------------------------------------------------------

    def _redis(self) -> Redis:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._client = None
            self._probe = None  # a task of a loop that is gone
            self._loop = loop
        if self._client is None:
            self._client = Redis.from_url(
                self.url,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                # no retries inside redis-py: one short attempt, then the local cache
                retry=Retry(NoBackoff(), 0),
            )
        return self._client

    def _usable(self) -> bool:
        if self.state == "ok":
            return True
        self._start_probe()
        return False

    async def _call(self, operation: Callable[[Redis], Awaitable[_T]]) -> _T | None:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await operation(self._redis())
        except _FAILURES as exc:
            self._degrade(exc)
            return None
        except Exception as exc:  # noqa: BLE001 - a cache must never fail a request: a
            # client whose connection is torn down under it can raise anything
            log.debug("unexpected failure of the shared cache", exc_info=True)
            self._degrade(exc)
            return None

    def _degrade(self, exc: BaseException) -> None:
        self.errors += 1
        if self.state == "ok":
            self.state = "degraded"
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.warning("shared verdict cache at %s failed (%s); local cache only until it "
                        "answers again", self.where, reason)
        self._start_probe()

    def _start_probe(self) -> None:
        if self._loop is not asyncio.get_running_loop():
            self._redis()  # adopt this loop before starting a task on it
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(
                self._reconnect(), name="redis-reconnect"
            )

    async def _reconnect(self) -> None:
        while True:
            await asyncio.sleep(self.retry_s)
            # drop connections a timeout may have left half-read; ping on a fresh one
            stale, self._client = self._client, None
            if stale is not None and self._loop is asyncio.get_running_loop():
                await _close_quietly(stale)
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self._redis().ping()
            except _FAILURES:
                continue
            self.state = "ok"
            log.warning("shared verdict cache at %s answers again", self.where)
            return


async def _close_quietly(client: Redis) -> None:
    try:
        async with asyncio.timeout(1.0):
            await client.aclose()
    except _FAILURES as exc:
        log.debug("closing a Redis client failed: %s", exc)


def _dump(verdict: Verdict) -> bytes:
    return json.dumps(
        {"score": verdict.score, "components": verdict.components, "status": verdict.status,
         "message": verdict.message},
        separators=(",", ":"),
    ).encode()


def _load(raw: bytes) -> Verdict | None:
    try:
        data = json.loads(raw)
        return Verdict(float(data["score"]), {str(k): float(v) for k, v in
                                              data["components"].items()},
                       status=data["status"], message=data["message"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
