"""The shared verdict cache against a real redis-server: replicas share verdicts, keys carry
the verifier version, and Redis down, hung or back never fails a request."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_sync
from prometheus_client import generate_latest

from reward_server import registry
from reward_server.cache import LRUVerdictCache
from reward_server.engine import Engine
from reward_server.redis_cache import KEY_PREFIX, RedisVerdictCache
from reward_server.settings import Settings
from reward_server.types import ScoreItem, Verdict
from tests.reward_server.redis_process import RedisProcess


@pytest.fixture()
def redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


def settings(server: RedisProcess, **kw: object) -> Settings:
    return Settings(workers=2, item_timeout_s=2.0, cache_size=1000, redis_url=server.url,
                    redis_timeout_s=0.2, **kw)  # type: ignore[arg-type]


def item(answer: str, reference: str) -> ScoreItem:
    return ScoreItem(answer_type="test-fake", response=f"<answer>{answer}</answer>",
                     answer=reference)


def raw_client(server: RedisProcess) -> redis_sync.Redis:
    return redis_sync.Redis.from_url(server.url)


async def wait_for_state(engine: Engine, state: str, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while engine.cache_state() != state:
        assert time.monotonic() < deadline, f"cache still {engine.cache_state()}, not {state}"
        await asyncio.sleep(0.05)


def test_verdicts_round_trip_with_the_ttl(redis: RedisProcess) -> None:
    cache = RedisVerdictCache(redis.url, ttl_s=600, timeout_s=0.5)
    verdict = Verdict(0.75, {"ssim": 0.5, "tag_jaccard": 1.0}, message="note")
    rejected = Verdict(0.0, status="rejected", message="the response is too costly")

    async def run() -> dict[str, Verdict]:
        await cache.put_many({"k1": verdict, "k2": rejected})
        found = await cache.get_many(["k1", "absent", "k2"])
        await cache.aclose()
        return found

    assert asyncio.run(run()) == {"k1": verdict, "k2": rejected}
    assert cache.stats() == {"state": "ok", "hits": 2, "misses": 1, "errors": 0}
    assert 0 < raw_client(redis).ttl(KEY_PREFIX + "k1") <= 600


def test_a_value_that_does_not_parse_is_a_miss(redis: RedisProcess) -> None:
    raw_client(redis).set(KEY_PREFIX + "junk", b"\xffnot json")
    cache = RedisVerdictCache(redis.url, ttl_s=60, timeout_s=0.5)
    assert asyncio.run(cache.get_many(["junk"])) == {}
    assert cache.stats()["misses"] == 1 and cache.state == "ok"


def test_a_group_is_verified_once_across_replicas(
    redis: RedisProcess, fake_answer_type: str
) -> None:
    group = [item("42", "42")] * 8 + [item("41", "42")] * 8
    with Engine(settings(redis)) as first, Engine(settings(redis)) as second:
        a = asyncio.run(first.score(group))
        b = asyncio.run(second.score(group))
        metrics = generate_latest(second.metrics.registry).decode()
    assert [r.reward for r in a] == [r.reward for r in b] == [1.0] * 8 + [0.0] * 8
    assert all(r.cached for r in b)
    # the second replica's verdicts were computed by the first replica's worker processes
    assert {r.components["pid"] for r in b} == {r.components["pid"] for r in a}
    assert 'reward_cache_hits_total{tier="redis"} 2.0' in metrics
    assert "reward_cache_misses_total 0.0" in metrics


def test_a_changed_verifier_version_never_reads_old_verdicts(
    redis: RedisProcess, fake_answer_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Engine(settings(redis)) as engine:
        assert asyncio.run(engine.score([item("9", "9")]))[0].cached is False
        spec = registry.get(fake_answer_type)
        monkeypatch.setitem(registry._SPECS, fake_answer_type,
                            dataclasses.replace(spec, version="next"))
        engine.cache = LRUVerdictCache(1000)  # as a fresh replica's
        again = asyncio.run(engine.score([item("9", "9")]))[0]
    assert again.cached is False and again.reward == 1.0
    assert raw_client(redis).dbsize() == 2  # one verdict per verifier version


def test_redis_down_degrades_to_local_then_recovers(
    redis: RedisProcess, fake_answer_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="reward_server.redis_cache")
    with Engine(settings(redis)) as engine:

        async def scenario() -> None:
            assert [r.reward for r in await engine.score([item("1", "1")])] == [1.0]
            redis.stop()
            for answer in ("2", "3", "4"):
                results = await engine.score([item(answer, "2"), item("1", "1")])
                assert [r.status for r in results] == ["ok", "ok"]
                assert results[0].reward == (1.0 if answer == "2" else 0.0)
                assert results[1].cached  # the local cache keeps serving
            assert engine.cache_state() == "degraded"
            assert engine.health()["cache"] == "degraded"
            text = generate_latest(engine.metrics.registry).decode()
            assert 'reward_cache_state{reward_cache_state="degraded"} 1.0' in text
            assert "reward_redis_up 0.0" in text
            redis.start()
            await wait_for_state(engine, "ok")
            await engine.score([item("5", "5")])

        asyncio.run(scenario())
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1, "an outage is logged once, not once per request"
    assert any("answers again" in r.getMessage() for r in caplog.records)
    assert raw_client(redis).dbsize() == 1  # written through again after the recovery


def test_a_hung_redis_costs_one_short_timeout(
    redis: RedisProcess, fake_answer_type: str
) -> None:
    with Engine(settings(redis)) as engine:

        async def scenario() -> list[float]:
            await engine.score([item("warm", "warm")])  # workers started, connection open
            redis.freeze()
            took = []
            try:
                for answer in ("6", "7"):
                    started = time.monotonic()
                    results = await engine.score([item(answer, answer)])
                    took.append(time.monotonic() - started)
                    assert results[0].reward == 1.0 and results[0].status == "ok"
                assert engine.cache_state() == "degraded"
            finally:
                redis.thaw()
            await wait_for_state(engine, "ok")
            assert (await engine.score([item("6", "6")]))[0].cached
            return took

        first, second = asyncio.run(scenario())
    assert first < 1.5, "the lookup and the write give up after redis_timeout_s each"
    assert second < first, "while degraded, Redis is not asked at all"
