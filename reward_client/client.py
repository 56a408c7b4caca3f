"""The client of the reward server: batched, async scoring over HTTP or gRPC.

`RewardClient(url)` speaks HTTP (`POST /score`) for an `http://` or `https://` URL and
gRPC (`reward.v1.RewardService`, `reward_client.grpc`) for a `grpc://host:port` one, or
as `transport=` says. Items and results are the same dicts either way (the service's
contract, see the README). grpcio is imported only when gRPC is used.

`score`/`ascore`: a large list is cut into requests of `batch_size` items sent
concurrently (at most `max_concurrency` in flight); results come back in request order.
Each request has a timeout; a transport error, a timeout, a 429 or 5xx (gRPC:
UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, ABORTED) is retried with exponential
backoff and jitter (tenacity) before `RewardServerError` is raised. A refusal (a 4xx
other than 429; gRPC INVALID_ARGUMENT, RESOURCE_EXHAUSTED) means our request is wrong, so
it is raised at once as `RewardRequestError` with the server's explanation.

`stream`/`astream`: items are sent as an iterable yields them and results come back as
they are ready, each with its `index` in the stream. Over gRPC that is one
`ScoreStream` call, `per_message` items a message (results in completion order, those
of one message together); over HTTP, consecutive items are sent in requests of
`batch_size` (results per request, in order). Streams are not retried.

Results come back as the server's dicts. Items the server could not judge (status
`timeout` or `error`) are NOT rewards of 0: `is_scored` tells them apart, the client logs
them, and the trainer leaves them out of the advantages.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import urllib.request
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from types import TracebackType

log = logging.getLogger(__name__)

Transport = Literal["auto", "http", "grpc"]

# Faults of the service, not of the response: such items carry no reward signal.
# Every other status (`ok`, `no_answer`, `rejected`, ...) is a real, scored reward.
UNSCORED_STATUSES = frozenset({"timeout", "error", "invalid"})


class RewardServerError(RuntimeError):
    """The server could not be reached or kept failing after every retry."""


class RewardRequestError(ValueError):
    """The server refused the request (4xx): a bug in the items, not a passing fault."""


class Retryable(Exception):  # noqa: N818 - what the client does with it
    """A transport's answer worth retrying (HTTP 429 or 5xx, gRPC UNAVAILABLE, ...)."""


class Connection(Protocol):
    """What a transport offers `RewardClient`: one open connection to the service."""

    async def __aenter__(self) -> Connection: ...

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def score(self, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One request's results, in order; raises `Retryable` or `RewardRequestError`."""
        ...

    async def health(self) -> dict[str, Any]: ...

    async def answer_types(self) -> list[dict[str, Any]]: ...

    def stream(
        self, items: AsyncIterable[dict[str, Any]], per_message: int
    ) -> AsyncIterator[dict[str, Any]]:
        """Results of the items, each with its `index`, as they are ready."""
        ...


def is_scored(result: dict[str, Any]) -> bool:
    """Whether the server judged the item (`ok` or `no_answer`), so its reward is real."""
    return result.get("status") not in UNSCORED_STATUSES


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, Retryable)


def pick_transport(url: str, transport: Transport = "auto") -> tuple[str, str]:
    """(`"http"` or `"grpc"`, the address): `grpc://host:port` is gRPC, `http(s)://` HTTP.

    With `transport="grpc"` the URL may also be `host:port` or `http://host:port`.
    """
    scheme = urlsplit(url).scheme if "://" in url else ""
    if transport == "auto":
        transport = "grpc" if scheme == "grpc" else "http"
    if transport == "http":
        if scheme == "grpc":
            raise ValueError(f"{url!r} is a gRPC URL; use http:// for transport='http'")
        return "http", url.rstrip("/")
    if transport != "grpc":
        raise ValueError(f"transport must be 'auto', 'http' or 'grpc', not {transport!r}")
    target = urlsplit(url).netloc if scheme else url
    if not target or "/" in target.strip("/"):
        raise ValueError(f"a gRPC address is grpc://host:port, not {url!r}")
    return "grpc", target.strip("/")


class RewardClient:
    """Scores items on a reward server, over HTTP or gRPC (see the module docstring).

    `base_url`: `http://host:8000` or `grpc://host:50051`. `transport`: `"auto"` (by its
    scheme), `"http"` or `"grpc"`. `timeout_s` bounds each request (a gRPC deadline).
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: Transport = "auto",
        timeout_s: float = 300.0,
        batch_size: int = 512,
        max_concurrency: int = 4,
        retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        progress: bool = False,
    ) -> None:
        if batch_size < 1 or max_concurrency < 1 or retries < 0:
            raise ValueError("batch_size and max_concurrency must be >= 1, retries >= 0")
        self.transport, self.base_url = pick_transport(base_url, transport)
        self.timeout_s = timeout_s
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.progress = progress

    # -- public, synchronous (the training loop is synchronous) --

    def score(self, items: Sequence[dict[str, Any]], desc: str = "scoring") -> list[dict[str, Any]]:
        """Score `items`; results in the same order. Logs items the server could not judge."""
        return asyncio.run(self.ascore(items, desc=desc))

    def stream(
        self, items: Iterable[dict[str, Any]], per_message: int = 1
    ) -> Iterator[dict[str, Any]]:
        """Score items as `items` yields them; results (with `index`) as they are ready.

        gRPC: `per_message` items go in each stream message and come back together (e.g.
        a GRPO group); HTTP: requests of `batch_size` items.
        """
        if per_message < 1:
            raise ValueError("per_message must be >= 1")
        if self.transport == "grpc":
            from reward_client.grpc import stream_sync

            yield from stream_sync(self.base_url, items, per_message)
            return
        iterator, start = iter(items), 0
        while chunk := list(itertools.islice(iterator, self.batch_size)):
            for offset, result in enumerate(self.score(chunk)):
                yield {**result, "index": start + offset}
            start += len(chunk)

    def health(self) -> dict[str, Any]:
        """`{"status": "ok", ...}` when the server serves (HTTP adds the pool's state)."""
        return asyncio.run(self._call("health", "GET /health", "Health.Check"))

    def answer_types(self) -> list[str]:
        """Names the server serves (its registry), to check data rows against."""
        rows = asyncio.run(self._call("answer_types", "GET /answer-types", "ListAnswerTypes"))
        return sorted(row["name"] for row in rows)

    # -- async --

    async def ascore(
        self,
        items: Sequence[dict[str, Any]],
        desc: str = "scoring",
        connection: Connection | None = None,
    ) -> list[dict[str, Any]]:
        """Async `score`. `connection`: an open `connect()` to reuse (else one per call)."""
        if not items:
            return []
        size = self.batch_size
        chunks = [list(items[i : i + size]) for i in range(0, len(items), size)]
        limiter = asyncio.Semaphore(self.max_concurrency)
        bar = tqdm(total=len(items), desc=desc, unit="item", disable=not self.progress, leave=False)
        async with contextlib.AsyncExitStack() as stack:
            conn = connection if connection is not None else await stack.enter_async_context(
                self.connect()
            )

            async def send(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
                async with limiter:
                    results = await self._score_with_retries(conn, chunk)
                bar.update(len(chunk))
                return results

            try:
                parts = await asyncio.gather(*(send(chunk) for chunk in chunks))
            finally:
                bar.close()
        results = [result for part in parts for result in part]
        _log_unscored(results)
        return results

    async def astream(
        self,
        items: AsyncIterable[dict[str, Any]] | Iterable[dict[str, Any]],
        per_message: int = 1,
    ) -> AsyncIterator[dict[str, Any]]:
        """Async `stream`: results (with `index`) as they are ready."""
        if per_message < 1:
            raise ValueError("per_message must be >= 1")
        source = items if isinstance(items, AsyncIterable) else _aiter(items)
        async with self.connect() as conn:
            try:
                async for result in conn.stream(source, per_message):
                    yield result
            except Retryable as exc:
                raise RewardServerError(f"stream to {self.base_url} failed: {exc!r}") from exc

    def connect(self) -> Connection:
        """A connection to the server, opened and closed by `async with`; passed to
        `ascore(connection=)`, its HTTP keep-alive connections or gRPC channel serve many
        calls (at most `max_concurrency` HTTP connections at once)."""
        if self.transport == "grpc":
            from reward_client.grpc import GrpcConnection

            return GrpcConnection(self.base_url, self.timeout_s)
        return HttpConnection(self.base_url, self.timeout_s, self.max_concurrency,
                              self.batch_size)

    # -- internals --

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential_jitter(
                multiplier=self.backoff_s, jitter=self.backoff_s, max=self.max_backoff_s
            ),
            retry=retry_if_exception(_retryable),
            before_sleep=_log_retry,
            reraise=True,
        )

    async def _score_with_retries(
        self, conn: Connection, chunk: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        try:
            results = await self._retrying()(conn.score, chunk)
        except Retryable as exc:
            raise RewardServerError(
                f"scoring on {self.base_url} failed after {self.retries + 1} attempts: {exc!r}"
            ) from exc
        if len(results) != len(chunk):
            raise RewardServerError(
                f"{self.base_url} answered {len(results)} results for {len(chunk)} items"
            )
        return results

    async def _call(self, method: str, http_what: str, grpc_what: str) -> Any:
        """Call `Connection.<method>()` with retries; errors name the request."""
        if self.transport == "grpc":
            what = f"{grpc_what} on grpc://{self.base_url}"
        else:
            verb, path = http_what.split(" ", 1)
            what = f"{verb} {self.base_url}{path}"
        async with self.connect() as conn:
            try:
                return await self._retrying()(getattr(conn, method))
            except Retryable as exc:
                raise RewardServerError(
                    f"{what} failed after {self.retries + 1} attempts: {exc!r}; "
                    "is the reward server running?"
                ) from exc


_JSON_HEADERS = {"content-type": "application/json"}


def json_body(value: Any) -> bytes:
    """`value` as JSON: orjson, which costs a trainer's process several times less than the
    stdlib encoder; the stdlib for what orjson refuses (text with lone surrogates, which
    model output can hold, and integers over 64 bits), escaped as the server reads it."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, allow_nan=False).encode()


def refuse_non_finite(items: Sequence[dict[str, Any]]) -> None:
    """Raise ValueError for a NaN or infinite number in an item's `answer` or `options`:
    JSON has none, and orjson would write `null` (for an option: its default)."""
    for item in items:
        for field in ("answer", "options"):
            value = item.get(field)
            if value is not None and not isinstance(value, str):
                _refuse_non_finite(value)


def _refuse_non_finite(value: Any) -> None:
    elements = value.values() if isinstance(value, dict) else (
        value if isinstance(value, list | tuple) else (value,))
    for element in elements:
        if isinstance(element, float):
            if not math.isfinite(element):
                raise ValueError(f"{element} is not a JSON number: send finite numbers only")
        elif isinstance(element, dict | list | tuple):
            _refuse_non_finite(element)


class HttpConnection:
    """The HTTP transport: `POST /score`, `GET /health`, `GET /answer-types` (aiohttp).

    aiohttp, not httpx: its C response parser and lighter request path cost a trainer's
    process less than half of httpx's CPU a request (0.95 vs 2.1 ms for a 128-item batch
    in `bench/throughput.py`, encoding included), CPU the trainer and, on one node, the
    server share.
    A failure to connect, a dropped connection or a timeout is `Retryable`.
    """

    def __init__(
        self, base_url: str, timeout_s: float, max_connections: int, batch_size: int
    ) -> None:
        self.base_url = base_url
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._proxy: str | None = None

    async def __aenter__(self) -> HttpConnection:
        # made here: a session belongs to the event loop that runs it
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            connector=aiohttp.TCPConnector(limit=self.max_connections),
        )
        self._proxy = _env_proxy(self.base_url)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, body: bytes | None = None
                       ) -> tuple[int, bytes]:
        """(status, body) of one request; a transport failure is `Retryable`, a 429 or
        5xx too."""
        if self._session is None:
            raise RuntimeError("HttpConnection is used outside `async with`")
        try:
            async with self._session.request(
                method, self.base_url + path, data=body, proxy=self._proxy,
                headers=_JSON_HEADERS if body is not None else None,
            ) as response:
                status, content = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Retryable(f"{method} {self.base_url}{path}: {exc!r}") from exc
        if status == 429 or status >= 500:
            raise Retryable(f"HTTP {status}: {_text(content, 300)}")
        return status, content

    async def score(self, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        refuse_non_finite(chunk)
        status, content = await self._request("POST", "/score", json_body({"items": chunk}))
        if status >= 400:
            raise RewardRequestError(
                f"/score refused the request (HTTP {status}): {_text(content, 2000)}"
            )
        results = _json(content, "/score").get("results")
        if not isinstance(results, list):
            raise RewardServerError(f"/score answered {type(results).__name__}, not results")
        return results

    async def _get(self, path: str) -> Any:
        status, content = await self._request("GET", path)
        if status >= 400:
            raise RewardRequestError(f"GET {path} answered HTTP {status}: {_text(content, 300)}")
        return _json(content, path)

    async def health(self) -> dict[str, Any]:
        return dict(await self._get("/health"))

    async def answer_types(self) -> list[dict[str, Any]]:
        body = await self._get("/answer-types")
        rows = body.get("answer_types", body) if isinstance(body, dict) else body
        return [row if isinstance(row, dict) else {"name": str(row)} for row in rows]

    async def stream(
        self, items: AsyncIterable[dict[str, Any]], per_message: int = 1
    ) -> AsyncIterator[dict[str, Any]]:
        """HTTP has no streams: consecutive items go in requests of `batch_size` (whatever
        `per_message` says)."""
        chunk: list[dict[str, Any]] = []
        start = 0
        async for item in items:
            chunk.append(item)
            if len(chunk) == self.batch_size:
                for offset, result in enumerate(await self.score(chunk)):
                    yield {**result, "index": start + offset}
                start, chunk = start + len(chunk), []
        if chunk:
            for offset, result in enumerate(await self.score(chunk)):
                yield {**result, "index": start + offset}


def _env_proxy(base_url: str) -> str | None:
    """The proxy HTTP(S)_PROXY and NO_PROXY give for the server, as httpx used them: found
    once a connection, not on every request (aiohttp's `trust_env` looks them up again in
    a thread for each)."""
    parts = urlsplit(base_url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _text(content: bytes, limit: int) -> str:
    return content[:limit].decode("utf-8", "replace")


def _json(content: bytes, what: str) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise RewardServerError(f"{what} answered a body that is not JSON: {exc}") from None


async def _aiter(items: Iterable[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for item in items:
        yield item


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("reward server: attempt %d failed (%r); retrying", state.attempt_number, error)


def _log_unscored(results: list[dict[str, Any]]) -> None:
    unscored = [r for r in results if not is_scored(r)]
    if not unscored:
        return
    counts = Counter(r.get("status") for r in unscored)
    examples = "; ".join(f"{r.get('id')}: {r.get('error')}" for r in unscored[:3])
    log.warning(
        "%d of %d items not scored (%s), excluded from advantages; e.g. %s",
        len(unscored),
        len(results),
        ", ".join(f"{status} {n}" for status, n in sorted(counts.items())),
        examples,
    )
