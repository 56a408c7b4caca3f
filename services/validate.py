"""The known-answer suite against a running deployment.

`run_validation(url)` sends every known-answer row (`reward_server.known_answers`) to the
service, one item per request, a few requests at a time, and returns a `Report`: per
answer type the rows, the agreement, the latency of each item's round trip (p50/p99),
the statuses other than `ok`, and whether the type met its threshold. The CLI
(`reward-server validate`), the pytest entry (`pytest --reward-url URL`) and the stack
tests all call it.

A `timeout` result or a transport failure (no answer in time, connection refused, HTTP
5xx) says nothing about the verdict, so such an item is sent again, one at a time, up to
`retries` times; the last answer counts and the report says how many were retried. A
verifier's `timeout` on a loaded machine (sympy's own limit, a cold browser) is the
usual reason.

A transport turns one row into the deployment's result: HTTP (`POST /score`, httpx) or
gRPC (`RewardService.Score` through `reward_client.grpc`, imported only when used). Which
one follows the URL as `RewardClient` reads it: `grpc://host:port` is gRPC, anything
else HTTP, unless `transport` says.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import httpx

from reward_client.client import pick_transport
from reward_server import known_answers
from reward_server.known_answers import KnownAnswer
from reward_server.known_answers.report import Outcome, Report, build_report
from services.validate_defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
)


class ValidationUnavailable(RuntimeError):
    """The suite cannot run at all (unreachable service, a bad URL, grpcio missing, no
    rows)."""


@dataclass(frozen=True)
class ItemAnswer:
    """The deployment's answer for one row: a result, or why there is none.

    `retryable`: a fault of the moment, not a verdict (a `timeout` result, no answer in
    time, a refused connection, HTTP 429 or 5xx, gRPC UNAVAILABLE and the like).
    """

    acc_reward: float | None
    status: str
    error: str | None = None
    cached: bool = False
    retryable: bool = False


def _from_result(result: dict[str, Any]) -> ItemAnswer:
    status = str(result["status"])
    return ItemAnswer(float(result["acc_reward"]), status, result.get("error"),
                      bool(result.get("cached", False)), retryable=status == "timeout")


class Transport(Protocol):
    name: str  # "http" or "grpc", as the report names it

    async def check(self) -> None:
        """Raise `ValidationUnavailable` when the service does not answer at all."""

    async def score(self, item: dict[str, Any]) -> ItemAnswer:
        """Score one request item; transport failures are an `ItemAnswer` too."""

    async def aclose(self) -> None: ...


class HttpTransport:
    """`POST {url}/score` with one item; `GET {url}/health` to check."""

    name = "http"

    def __init__(self, url: str, timeout_s: float, concurrency: int) -> None:
        self.url = url.rstrip("/")
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._client = httpx.AsyncClient(timeout=timeout_s, limits=limits)

    async def check(self) -> None:
        try:
            response = await self._client.get(self.url + "/health")
        except httpx.HTTPError as exc:
            raise ValidationUnavailable(f"{self.url}/health: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise ValidationUnavailable(f"{self.url}/health answered {response.status_code}")

    async def score(self, item: dict[str, Any]) -> ItemAnswer:
        try:
            response = await self._client.post(self.url + "/score", json={"items": [item]})
        except httpx.TimeoutException as exc:
            return ItemAnswer(None, "client_timeout", f"{type(exc).__name__}: {exc}",
                              retryable=True)
        except httpx.HTTPError as exc:
            return ItemAnswer(None, "unreachable", f"{type(exc).__name__}: {exc}",
                              retryable=True)
        if response.status_code != 200:
            return ItemAnswer(None, f"http {response.status_code}", _error_text(response),
                              retryable=response.status_code == 429
                              or response.status_code >= 500)
        try:
            return _from_result(response.json()["results"][0])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return ItemAnswer(None, "bad_response", f"{type(exc).__name__}: {exc}")

    async def aclose(self) -> None:
        await self._client.aclose()


def _error_text(response: httpx.Response) -> str:
    """The service's one-line `message`, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or response.text)[:500]


def parse_min_agreement(values: Iterable[str]) -> dict[str, float]:
    """`["0.9", "math-expressions=0.97"]` as `{"*": 0.9, "math-expressions": 0.97}`.

    Raises ValueError naming the bad value when a fraction is not a number in [0, 1].
    """
    thresholds = {}
    for value in values:
        name, _, fraction = value.rpartition("=")
        try:
            share = float(fraction)
        except ValueError:
            raise ValueError(f"min agreement {value!r}: FRACTION must be a number") from None
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"min agreement {value!r}: FRACTION must be in [0, 1]")
        thresholds[name or "*"] = share
    return thresholds


class GrpcTransport:
    """`RewardService.Score` with one item over one channel; the gRPC health service to
    check. A refused call's status is `grpc CODE` (e.g. `grpc INVALID_ARGUMENT`)."""

    name = "grpc"

    def __init__(self, target: str, timeout_s: float) -> None:
        try:
            from reward_client.grpc import GrpcConnection
        except ImportError as exc:
            raise ValidationUnavailable(
                f"the gRPC transport needs grpcio (reward_client.grpc): {exc}"
            ) from None
        self.target = target
        self._connection = GrpcConnection(target, timeout_s)
        self._stack = AsyncExitStack()

    async def check(self) -> None:
        from reward_client.client import Retryable, RewardRequestError

        await self._stack.enter_async_context(self._connection)
        try:
            health = await self._connection.health()
        except (Retryable, RewardRequestError) as exc:
            raise ValidationUnavailable(f"grpc://{self.target} health: {exc}") from None
        if health.get("status") != "ok":
            raise ValidationUnavailable(f"grpc://{self.target} health: {health}")

    async def score(self, item: dict[str, Any]) -> ItemAnswer:
        from reward_client.client import Retryable, RewardRequestError

        try:
            (result,) = await self._connection.score([item])
        except (Retryable, RewardRequestError) as exc:
            code = getattr(exc.__cause__, "code", None)
            status = f"grpc {code().name}" if callable(code) else "refused"
            return ItemAnswer(None, status, str(exc)[:500],
                              retryable=isinstance(exc, Retryable))
        except ValueError as exc:  # a result that does not unpack to one
            return ItemAnswer(None, "bad_response", f"{type(exc).__name__}: {exc}")
        return _from_result(result)

    async def aclose(self) -> None:
        await self._stack.aclose()


def make_transport(
    url: str, transport: str | None, timeout_s: float, concurrency: int
) -> Transport:
    """The transport for `url`; `transport` None follows the URL's scheme."""
    try:
        name, address = pick_transport(url, transport or "auto")  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValidationUnavailable(str(exc)) from None
    if name == "grpc":
        return GrpcTransport(address, timeout_s)
    return HttpTransport(address, timeout_s, concurrency)


async def _run_rows(
    transport: Transport, rows: Sequence[KnownAnswer], concurrency: int
) -> list[tuple[Outcome, bool]]:
    """Each row's outcome, and whether it is worth sending again."""
    gate = asyncio.Semaphore(concurrency)

    async def one(row: KnownAnswer) -> tuple[Outcome, bool]:
        async with gate:
            start = time.perf_counter()
            answer = await transport.score(row.request_item())
            elapsed = time.perf_counter() - start
        outcome = Outcome(row, answer.acc_reward, answer.status, elapsed, answer.error,
                          answer.cached)
        return outcome, answer.retryable

    return list(await asyncio.gather(*(one(row) for row in rows)))


async def validate_async(
    url: str,
    answer_types: Iterable[str] | None = None,
    transport: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    concurrency: int = DEFAULT_CONCURRENCY,
    min_agreement: Mapping[str, float] | None = None,
    files: Sequence[Path] | None = None,
    retries: int = DEFAULT_RETRIES,
) -> Report:
    """`run_validation` for callers that already run an event loop."""
    wanted = None if answer_types is None else list(answer_types)
    rows = known_answers.load(wanted, files)
    if not rows:
        raise ValidationUnavailable(f"no known-answer rows for answer types {wanted}")
    client = make_transport(url, transport, timeout_s, concurrency)
    try:
        await client.check()
        answered = await _run_rows(client, rows, concurrency)
        for _ in range(retries):
            again = [i for i, (_, retry) in enumerate(answered) if retry]
            if not again:
                break
            redone = await _run_rows(client, [answered[i][0].row for i in again], 1)
            for i, (outcome, retry) in zip(again, redone, strict=True):
                answered[i] = (replace(outcome, attempts=answered[i][0].attempts + 1), retry)
    finally:
        await client.aclose()
    outcomes = [outcome for outcome, _ in answered]
    return build_report(url, client.name, outcomes, min_agreement)


def run_validation(
    url: str,
    answer_types: Iterable[str] | None = None,
    transport: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    concurrency: int = DEFAULT_CONCURRENCY,
    min_agreement: Mapping[str, float] | None = None,
    files: Sequence[Path] | None = None,
    retries: int = DEFAULT_RETRIES,
) -> Report:
    """Send every known-answer row to the deployment at `url`; the judged `Report`.

    `transport` is "http" or "grpc" (None: `grpc://` URLs are gRPC, others HTTP);
    `answer_types` limits the rows; `timeout_s` bounds each request; `min_agreement`
    replaces the default threshold of a type (or "*") by a fraction of its rows; `files`
    replaces the default rows files; `retries` bounds the resending of items that timed
    out or failed in transport. Raises `ValidationUnavailable` when the service does
    not answer its health check, the URL does not fit the transport, or no row is selected.
    """
    return asyncio.run(
        validate_async(url, answer_types, transport, timeout_s, concurrency, min_agreement,
                       files, retries)
    )
