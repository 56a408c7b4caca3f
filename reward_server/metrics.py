"""What a replica counts, exposed by the transports as Prometheus text (`GET /metrics`).

Every engine owns one `EngineMetrics` with a registry of its own, so two engines in one
process (tests, benchmarks) never mix their counts. The engine updates the counters;
transports only observe `request_seconds` and render `registry`.

    reward_items_total{answer_type, status}      items scored, by result status
    reward_verify_seconds{answer_type}           scheduling to verdict of one verification
                                                 (queueing in the pool included)
    reward_request_seconds{transport}            one scoring request, end to end
    reward_cache_hits_total{tier}                distinct keys found: tier local | redis
    reward_cache_misses_total                    distinct keys no cache knew (verified)
    reward_worker_kills_total                    workers killed for overrunning the timeout
    reward_worker_restarts_total{reason}         worker processes replaced: timeout | died,
                                                 and whole-pool restarts: pool
    reward_inflight_items                        verifications running or queued now
    reward_cache_state{reward_cache_state}       local (no Redis) | ok | degraded
    reward_redis_up                              1 when the shared cache answers, else 0
                                                 (absent without Redis)
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric, StateSetMetricFamily
from prometheus_client.registry import Collector

CacheMode = Literal["local", "ok", "degraded"]
CACHE_MODES: tuple[CacheMode, ...] = ("local", "ok", "degraded")

_VERIFY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _CacheStateCollector(Collector):
    """Reads the cache state when scraped, so it is never stale."""

    def __init__(self, state: Callable[[], CacheMode]) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        state = self._state()
        yield StateSetMetricFamily(
            "reward_cache_state", "Verdict cache: local (no Redis), ok, or degraded.",
            value={mode: mode == state for mode in CACHE_MODES},
        )
        if state != "local":
            yield GaugeMetricFamily("reward_redis_up", "1 when the shared cache answers.",
                                    value=1.0 if state == "ok" else 0.0)

    def describe(self) -> Iterable[Metric]:
        return []


class EngineMetrics:
    def __init__(self, cache_state: Callable[[], CacheMode], inflight: Callable[[], int]):
        self.registry = CollectorRegistry()
        r = self.registry
        self.items = Counter("reward_items", "Items scored, by answer type and result status.",
                             ["answer_type", "status"], registry=r)
        self.verify_seconds = Histogram(
            "reward_verify_seconds",
            "Scheduling to verdict of one verification (queueing included), by answer type.",
            ["answer_type"], buckets=_VERIFY_BUCKETS, registry=r,
        )
        self.request_seconds = Histogram(
            "reward_request_seconds", "One scoring request, end to end, by transport.",
            ["transport"], buckets=_REQUEST_BUCKETS, registry=r,
        )
        self.cache_hits = Counter("reward_cache_hits",
                                  "Distinct verdict keys found in a cache, by tier.",
                                  ["tier"], registry=r)
        self.cache_misses = Counter("reward_cache_misses",
                                    "Distinct verdict keys no cache knew (verified).", registry=r)
        self.worker_kills = Counter("reward_worker_kills",
                                    "Workers killed because an item overran the timeout.",
                                    registry=r)
        self.worker_restarts = Counter(
            "reward_worker_restarts",
            "Worker processes replaced (reason timeout or died) and pool restarts (pool).",
            ["reason"], registry=r,
        )
        inflight_gauge = Gauge("reward_inflight_items",
                               "Verifications running or queued now.", registry=r)
        inflight_gauge.set_function(inflight)
        r.register(_CacheStateCollector(cache_state))

    def count_items(self, answer_types: Iterable[str], statuses: Sequence[str]) -> None:
        """One batch's results: answer types and statuses in the same order."""
        for (answer_type, status), n in collections.Counter(zip(answer_types, statuses,
                                                                strict=True)).items():
            self.items.labels(answer_type, status).inc(n)
