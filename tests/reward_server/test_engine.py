"""The worker engine: timeouts kill only the overrunning item, faults stay per item,
identical answers are verified once, results keep request order."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import threading
import time
import zlib

import pytest

from reward_server import engine as engine_module
from reward_server.cache import LRUVerdictCache, verdict_key
from reward_server.engine import INLINE_ITEMS, INLINE_TEXT_CHARS, Engine, _all_done
from reward_server.settings import Settings
from reward_server.types import ScoreItem, Verdict


def item(answer: str, reference: str = "7", **kw: object) -> ScoreItem:
    return ScoreItem(answer_type=kw.pop("answer_type", "test-fake"),  # type: ignore[arg-type]
                     response=f"<answer>{answer}</answer>", answer=reference, **kw)  # type: ignore[arg-type]


def test_slow_verifier_times_out_alone_and_worker_is_replaced(engine: Engine) -> None:
    batch = [item("7", id="a"), item("sleep:30", id="slow"), item("8", id="b"), item("7", "7")]
    results = engine.score_sync(batch)
    assert [r.id for r in results] == ["a", "slow", "b", None]
    assert results[1].status == "timeout" and results[1].reward == 0.0
    assert results[1].error and "timeout" in results[1].error
    assert results[0].status == "ok" and results[0].reward == 1.0
    assert results[2].status == "ok" and results[2].reward == 0.0
    # the pool was not poisoned: a fresh batch is verified by live workers
    again = engine.score_sync([item("9", "9"), item("sleep:0.01", "x")])
    assert [r.status for r in again] == ["ok", "ok"]
    assert engine.health()["pool_active"] is True


def test_timeouts_are_not_cached(engine: Engine) -> None:
    first = engine.score_sync([item("sleep:20", "nocache")])[0]
    second = engine.score_sync([item("sleep:20", "nocache")])[0]
    assert first.status == second.status == "timeout"
    assert second.cached is False


def test_crash_and_exception_are_per_item_errors(engine: Engine) -> None:
    results = engine.score_sync([item("crash"), item("raise"), item("7")])
    assert results[0].status == "error" and "died" in (results[0].error or "")
    assert results[1].status == "error" and "deliberate failure" in (results[1].error or "")
    assert results[2].status == "ok" and results[2].reward == 1.0


def test_group_of_identical_answers_is_verified_once(engine: Engine) -> None:
    group = [item("42", "42", id=str(i)) for i in range(16)]
    results = engine.score_sync(group)
    assert [r.cached for r in results] == [False] + [True] * 15
    assert len({r.components["pid"] for r in results}) == 1  # one worker computed it
    assert all(r.reward == 1.0 for r in results)
    assert all(r.cached for r in engine.score_sync(group))  # and the cache keeps it


def test_cache_key_includes_reference_and_options(engine: Engine) -> None:
    a, b, c = engine.score_sync(
        [item("5", "5"), item("5", "6"), item("5", "6", options={"bonus": 0.25})]
    )
    assert (a.reward, b.reward, c.reward) == (1.0, 0.0, 0.25)
    assert not b.cached and not c.cached


def test_no_answer_and_unknown_type_and_bad_option(engine: Engine) -> None:
    no_tag = ScoreItem(answer_type="test-fake", response="7", answer="7")
    results = engine.score_sync(
        [no_tag, item("7", answer_type="nope"), item("7", options={"colour": "red"})]
    )
    assert results[0].status == "no_answer" and results[0].reward == 0.0
    assert results[0].extracted is None
    assert results[1].status == "error" and "known:" in (results[1].error or "")
    assert results[2].status == "error" and "colour" in (results[2].error or "")


def test_lenient_extraction_option(engine: Engine) -> None:
    lenient = ScoreItem(answer_type="test-fake", response="so the answer is \\boxed{7}",
                        answer="7", options={"strict_tags": False})
    result = engine.score_sync([lenient])[0]
    assert result.extracted == "7" and result.reward == 1.0


def test_spatial_bonus_and_format_weight(engine: Engine) -> None:
    cot = "<think>the cup is at [10, 20, 30, 40]</think><answer>7</answer>"
    spatial = ScoreItem(answer_type="test-fake", response=cot, answer="7",
                        problem_type="spatial-reasoning", prompt_type="cot")
    no_box = ScoreItem(answer_type="test-fake", response="<think>x</think><answer>7</answer>",
                       answer="7", problem_type="spatial-reasoning", prompt_type="cot")
    weighted = ScoreItem(answer_type="test-fake", response="<answer>1</answer>", answer="7",
                         prompt_type="normal", options={"format_weight": 0.5})
    r_spatial, r_no_box, r_weighted = engine.score_sync([spatial, no_box, weighted])
    assert r_spatial.reward == 1.5 and r_spatial.components["spatial_bonus"] == 0.5
    assert r_no_box.reward == 1.0 and r_no_box.format_reward == 1.0
    assert r_weighted.acc_reward == 0.0 and r_weighted.format_reward == 1.0
    assert r_weighted.reward == 0.5


def test_thousand_items_keep_request_order(engine: Engine) -> None:
    batch = [item(str(i % 37), str(i % 5), id=f"i{i}") for i in range(1000)]
    results = engine.score_sync(batch)
    assert [r.id for r in results] == [f"i{i}" for i in range(1000)]
    assert [r.reward for r in results] == [float(i % 37 == i % 5) for i in range(1000)]


def test_async_score_matches_sync(engine: Engine) -> None:
    batch = [item(str(i % 3), "1", id=str(i)) for i in range(20)]
    sync = engine.score_sync(batch)
    async_results = asyncio.run(engine.score(batch))
    assert [r.reward for r in async_results] == [r.reward for r in sync]


def test_a_long_batch_is_extracted_off_the_event_loop(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch with more text than `INLINE_TEXT_CHARS` (responses or references) or more
    items than `INLINE_ITEMS` is extracted in a thread (the event loop keeps serving
    meanwhile); a short one on the loop, which costs less than a hop."""
    threads: list[str] = []
    prepare = Engine._prepare_batch

    def recording(self: Engine, items: list[ScoreItem]) -> object:
        threads.append(threading.current_thread().name)
        return prepare(self, items)

    monkeypatch.setattr(Engine, "_prepare_batch", recording)
    batches = {
        "short": [item("1", "1")],
        "a long response": [item("1" + " " * INLINE_TEXT_CHARS, "1")],
        "a long reference": [item("1", "1" * INLINE_TEXT_CHARS)],
        "a long list reference": [item("1", [["1"] * INLINE_TEXT_CHARS])],  # type: ignore[arg-type]
        "many items": [item("1", "1") for _ in range(INLINE_ITEMS + 1)],
    }
    for batch in batches.values():
        asyncio.run(engine.score(batch))
    on_loop = {name: thread == threading.main_thread().name
               for name, thread in zip(batches, threads, strict=True)}
    assert on_loop == {name: name == "short" for name in batches}


def test_a_size_bound_within_the_inline_limit_spares_counting_the_text(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller's bound on the batch's size (a request body's length) within
    `INLINE_TEXT_CHARS` keeps the batch on the loop uncounted; a larger one leaves the
    decision to the count; the item count still holds."""
    threads: list[str] = []
    counted: list[int] = []
    prepare, short = Engine._prepare_batch, engine_module._short

    def recording(self: Engine, items: list[ScoreItem]) -> object:
        threads.append(threading.current_thread().name)
        return prepare(self, items)

    def counting(items: list[ScoreItem]) -> bool:
        counted.append(len(items))
        return short(items)

    monkeypatch.setattr(Engine, "_prepare_batch", recording)
    monkeypatch.setattr(engine_module, "_short", counting)
    cases = {
        "bound within": ([item("1", "1")], INLINE_TEXT_CHARS, True, False),
        "bound over, short text": ([item("1", "1")], INLINE_TEXT_CHARS + 1, True, True),
        "bound over, long text": ([item("1" + " " * INLINE_TEXT_CHARS, "1")],
                                  2 * INLINE_TEXT_CHARS, False, True),
        "bound within, many items": ([item("1", "1") for _ in range(INLINE_ITEMS + 1)],
                                     INLINE_TEXT_CHARS, False, True),
    }
    for name, (batch, bound, on_loop, counts) in cases.items():
        threads.clear()
        counted.clear()
        results = asyncio.run(engine.score(batch, size_bound=bound))
        assert [r.reward for r in results] == [1.0] * len(batch), name
        assert (threads == [threading.main_thread().name]) == on_loop, name
        assert bool(counted) == counts, name


def test_lru_cache_evicts_oldest() -> None:
    cache = LRUVerdictCache(2)
    cache.put("a", Verdict(1.0))
    cache.put("b", Verdict(0.5))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", Verdict(0.0))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.stats()["size"] == 2


def test_engine_without_cache_recomputes(fake_answer_type: str) -> None:
    with Engine(Settings(workers=1, cache_size=0)) as eng:
        eng.score_sync([item("3", "3")])
        assert eng.score_sync([item("3", "3")])[0].cached is False


def _reference_with_home(home: int, skip: int = 0) -> str:
    """A reference whose group's home is worker `home` of two (the engine's own hash)."""
    found = [f"ref-{i}" for i in range(100)
             if zlib.crc32(f'test-fake\x00"ref-{i}"'.encode()) % 2 == home]
    return found[skip]


def test_a_groups_items_run_on_its_home_worker(fake_answer_type: str) -> None:
    # two groups of 6 distinct answers (the option differs), one per worker, 50 ms each:
    # each worker runs its own group; only at the very end may one take the other's last
    groups = [_reference_with_home(0), _reference_with_home(1)]
    items = [ScoreItem("test-fake", "<answer>sleep:0.05</answer>", ref,
                       options={"bonus": i / 1000}) for ref in groups for i in range(6)]
    with Engine(Settings(workers=2, cache_size=0)) as fresh:
        while fresh.health()["worker_start_s"] is None:  # both workers up
            time.sleep(0.05)
        results = fresh.score_sync(items)
    pids = [[r.components["pid"] for r, it in zip(results, items, strict=True)
             if it.answer == ref] for ref in groups]
    main = [max(set(p), key=p.count) for p in pids]
    assert main[0] != main[1]
    assert all(p.count(m) >= 5 for p, m in zip(pids, main, strict=True)), pids


def test_a_big_group_spills_to_the_idle_worker(engine: Engine) -> None:
    # 48 distinct keys (the option differs) of one reference, 50 ms each: the worker that
    # has no group of its own waiting takes some
    items = [ScoreItem("test-fake", "<answer>sleep:0.05</answer>", "one-ref",
                       options={"bonus": i / 1000}) for i in range(48)]
    results = engine.score_sync(items)
    assert all(r.status == "ok" for r in results)
    assert len({r.components["pid"] for r in results}) == 2


def test_workers_warm_up_before_their_first_item(fake_answer_type: str) -> None:
    with Engine(Settings(workers=1, warm_up=True, cache_size=0)) as eng:
        assert eng.score_sync([item("warmed?")])[0].acc_reward == 1.0
        health = eng.health()
        assert health["workers_ready"] == 1 and health["worker_start_s"] > 0
        assert 0 <= health["warmup_s"] <= health["worker_start_s"]
    with Engine(Settings(workers=1, warm_up=False, cache_size=0)) as eng:
        assert eng.score_sync([item("warmed?")])[0].acc_reward == 0.0


def test_key_error_inside_extract_is_an_extract_failure(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    result = engine.score_sync([item("extract-keyerror")])[0]
    assert result.status == "error"
    assert result.error and result.error.startswith("extract failed: KeyError")
    assert "unknown answer_type" not in result.error
    assert any("extract failed" in r.getMessage() for r in caplog.records)  # and logged



def test_cache_stays_bounded_under_150k_distinct_items(fake_answer_type: str) -> None:
    cache = LRUVerdictCache(1000)
    for i in range(150_000):
        cache.put(verdict_key("test-fake", "v1", str(i), "7", "{}", "null"), Verdict(1.0))
    assert cache.stats()["size"] == 1000
    with Engine(Settings(workers=2, item_timeout_s=5.0, cache_size=300)) as small:
        items = [ScoreItem("test-fake", f"<answer>{i}</answer>", "7") for i in range(3000)]
        results = small.score_sync(items)
        assert len(results) == 3000 and {r.status for r in results} == {"ok"}
        assert small.health()["cache_stats"]["local"]["size"] == 300
# A short batch is scheduled on the event loop, a long one (more text than
# INLINE_TEXT_CHARS) from a thread, behind a shielded task: cancelling must work for both.
PADDING = {"short": "", "long": " " * INLINE_TEXT_CHARS}


def padded(scored: ScoreItem, padding: str) -> ScoreItem:
    return dataclasses.replace(scored, response=scored.response + padding)


@pytest.mark.parametrize("batch", sorted(PADDING))
def test_cancelled_call_frees_its_workers(fake_answer_type: str, batch: str) -> None:
    """Both workers are busy with a call that is then cancelled: the next call is served
    at once, not after the abandoned items' 20 s."""
    pad = PADDING[batch]
    with Engine(Settings(workers=2, item_timeout_s=30, cache_size=0)) as eng:

        async def scenario() -> tuple[list[str], float]:
            abandoned = asyncio.create_task(eng.score([padded(item("sleep:20", "a"), pad),
                                                       padded(item("sleep:20", "b"), pad)]))
            await asyncio.sleep(1.0)  # both running in the workers
            abandoned.cancel()
            started = asyncio.get_running_loop().time()
            results = await asyncio.wait_for(eng.score([item("7"), item("8")]), timeout=15)
            return [r.status for r in results], asyncio.get_running_loop().time() - started

        statuses, elapsed = asyncio.run(scenario())
        assert statuses == ["ok", "ok"]
        assert elapsed < 15
        assert eng.health()["inflight"] == 0


@pytest.mark.parametrize("batch", sorted(PADDING))
def test_cancelling_one_call_keeps_a_verification_another_call_shares(
    fake_answer_type: str, batch: str
) -> None:
    with Engine(Settings(workers=1, item_timeout_s=10, cache_size=0)) as eng:

        async def scenario() -> str:
            shared = [padded(item("sleep:1.5", "x"), PADDING[batch])]
            first = asyncio.create_task(eng.score(shared))
            second = asyncio.create_task(eng.score(shared))
            await asyncio.sleep(0.5)
            first.cancel()
            [result] = await second
            return result.status

        assert asyncio.run(scenario()) == "ok"


def test_waiting_for_verdicts_ends_with_the_last_and_a_cancel_leaves_them_running() -> None:
    futures = {f"k{i}": concurrent.futures.Future() for i in range(5)}
    futures["k4"].set_result(Verdict(1.0))  # already done when the wait starts

    def finish_later() -> None:
        for key in ("k2", "k0", "k3", "k1"):
            time.sleep(0.05)
            futures[key].set_result(Verdict(1.0))

    async def wait_all() -> list[bool]:
        threading.Thread(target=finish_later).start()
        await _all_done(futures)
        return [f.done() for f in futures.values()]

    assert asyncio.run(wait_all()) == [True] * 5

    shared: concurrent.futures.Future[Verdict] = concurrent.futures.Future()

    async def cancel_a_wait() -> None:
        waiting = asyncio.ensure_future(_all_done({"a": shared, "b": shared}))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(cancel_a_wait())
    assert not shared.cancelled() and not shared.done()
    shared.set_result(Verdict(1.0))  # its callback finds the loop closed: no error
