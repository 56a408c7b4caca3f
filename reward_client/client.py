"""The HTTP client of the reward server: batched, async `POST /score`.

Items follow the service's contract (`{"items": [...]}` in, `{"results": [...]}` out, in
request order; see the README). A large list is cut into requests of `batch_size` items
sent concurrently (at most `max_concurrency` in flight). Each request has a timeout; a
transport error, a timeout, a 429 or a 5xx is retried with exponential backoff and jitter
(tenacity) before `RewardServerError` is raised. A 4xx other than 429 means our request is
wrong, so it is raised at once as `RewardRequestError` with the server's explanation.

Results come back as the server's dicts. Items the server could not judge (status
`timeout` or `error`) are NOT rewards of 0: `is_scored` tells them apart, the client logs
them, and the trainer leaves them out of the advantages.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

# Faults of the service, not of the response: such items carry no reward signal.
# Every other status (`ok`, `no_answer`, `rejected`, ...) is a real, scored reward.
UNSCORED_STATUSES = frozenset({"timeout", "error"})


class RewardServerError(RuntimeError):
    """The server could not be reached or kept failing after every retry."""


class RewardRequestError(ValueError):
    """The server refused the request (4xx): a bug in the items, not a passing fault."""


class _Retryable(Exception):
    """A response worth retrying (429 or 5xx)."""


def is_scored(result: dict[str, Any]) -> bool:
    """Whether the server judged the item (`ok` or `no_answer`), so its reward is real."""
    return result.get("status") not in UNSCORED_STATUSES


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, _Retryable | httpx.TransportError)


class RewardClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 300.0,
        batch_size: int = 512,
        max_concurrency: int = 4,
        retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        progress: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if batch_size < 1 or max_concurrency < 1 or retries < 0:
            raise ValueError("batch_size and max_concurrency must be >= 1, retries >= 0")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.progress = progress
        self._transport = transport

    # -- public, synchronous (the training loop is synchronous) --

    def score(self, items: Sequence[dict[str, Any]], desc: str = "scoring") -> list[dict[str, Any]]:
        """Score `items`; results in the same order. Logs items the server could not judge."""
        return asyncio.run(self.ascore(items, desc=desc))

    def health(self) -> dict[str, Any]:
        return asyncio.run(self._get("/health"))

    def answer_types(self) -> list[str]:
        """Names the server serves (its `/answer-types`), to check data rows against."""
        body = asyncio.run(self._get("/answer-types"))
        rows = body.get("answer_types", body) if isinstance(body, dict) else body
        return sorted(row["name"] if isinstance(row, dict) else str(row) for row in rows)

    # -- async --

    async def ascore(
        self, items: Sequence[dict[str, Any]], desc: str = "scoring"
    ) -> list[dict[str, Any]]:
        if not items:
            return []
        size = self.batch_size
        chunks = [list(items[i : i + size]) for i in range(0, len(items), size)]
        limiter = asyncio.Semaphore(self.max_concurrency)
        bar = tqdm(total=len(items), desc=desc, unit="item", disable=not self.progress, leave=False)
        async with self._client() as client:

            async def send(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
                async with limiter:
                    results = await self._post_with_retries(client, chunk)
                bar.update(len(chunk))
                return results

            try:
                parts = await asyncio.gather(*(send(chunk) for chunk in chunks))
            finally:
                bar.close()
        results = [result for part in parts for result in part]
        _log_unscored(results)
        return results

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

    async def _post_with_retries(
        self, client: httpx.AsyncClient, chunk: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        try:
            return await self._retrying()(self._post, client, chunk)
        except (_Retryable, httpx.TransportError) as exc:
            raise RewardServerError(
                f"POST {self.base_url}/score failed after {self.retries + 1} attempts: {exc!r}"
            ) from exc

    async def _post(
        self, client: httpx.AsyncClient, chunk: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        response = await client.post("/score", json={"items": chunk})
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}: {response.text[:300]}")
        if response.status_code >= 400:
            raise RewardRequestError(
                f"/score refused the request (HTTP {response.status_code}): {response.text[:2000]}"
            )
        results = response.json().get("results")
        if not isinstance(results, list) or len(results) != len(chunk):
            got = len(results) if isinstance(results, list) else type(results).__name__
            raise RewardServerError(f"/score answered {got} results for {len(chunk)} items")
        return results

    async def _get(self, path: str) -> Any:
        async def get(client: httpx.AsyncClient) -> Any:
            response = await client.get(path)
            if response.status_code == 429 or response.status_code >= 500:
                raise _Retryable(f"HTTP {response.status_code}: {response.text[:300]}")
            response.raise_for_status()
            return response.json()

        async with self._client() as client:
            try:
                return await self._retrying()(get, client)
            except (_Retryable, httpx.TransportError) as exc:
                raise RewardServerError(
                    f"GET {self.base_url}{path} failed after {self.retries + 1} attempts: "
                    f"{exc!r}; is the reward server running?"
                ) from exc

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(self.timeout_s),
            transport=self._transport,
            limits=httpx.Limits(max_connections=self.max_concurrency),
        )


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
