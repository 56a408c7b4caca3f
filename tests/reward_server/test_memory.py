"""The memory cap of each worker: an item that needs more is scored `error`, the worker
is replaced, the rest of the batch and the pool are fine."""

from __future__ import annotations

import os
import threading
import time

from reward_server.engine import Engine
from reward_server.memory import tree_private_kib
from reward_server.settings import Settings
from reward_server.types import ScoreItem


def fake(answer: str, item_id: str) -> ScoreItem:
    return ScoreItem(answer_type="test-fake", response=f"<answer>{answer}</answer>",
                     answer=answer, id=item_id)


def html(page: str, item_id: str) -> ScoreItem:
    return ScoreItem(answer_type="html-code", response=f"<answer>{page}</answer>",
                     answer="<p>hello</p>", id=item_id, options={"javascript": True})


def test_items_over_the_cap_are_errors_and_the_pool_keeps_serving(fake_answer_type: str) -> None:
    settings = Settings(workers=2, item_timeout_s=20.0, cache_size=0, worker_memory_mb=400)
    # The workers fork from a process that holds more than their cap: the cap counts what
    # they add, not what they inherit.
    ballast = b"x" * (600 * 2**20)
    with Engine(settings) as engine:
        start = time.monotonic()
        results = {r.id: r for r in engine.score_sync([
            fake("alloc:100", "small"),  # under the cap
            fake("alloc:2000", "in-worker"),  # the worker's own allocation fails
            # each child under the cap, together over it: the watchdog kills the tree
            fake("children-alloc:4:250", "in-child"),
            fake("7", "plain"),
        ])}
        elapsed = time.monotonic() - start
        again = engine.score_sync([fake("7", "again")])[0]
    assert results["small"].status == "ok"
    assert results["in-worker"].status == "error" and "MemoryError" in results["in-worker"].error
    assert results["in-child"].status == "error"
    assert "REWARD_WORKER_MEMORY_MB" in (results["in-child"].error or "")
    assert results["plain"].status == "ok" and again.status == "ok"
    assert elapsed < settings.item_timeout_s  # stopped by the cap, not by the timeout
    assert len(ballast) == 600 * 2**20


def test_a_javascript_memory_bomb_crashes_its_page_quickly_and_scores_zero() -> None:
    bomb = "<script>let a = []; while (true) { a.push(new Array(1e6).fill(1.5)); }</script>"
    settings = Settings(workers=1, item_timeout_s=30.0, cache_size=0, worker_memory_mb=1024)
    peak = [0]
    running = threading.Event()
    running.set()

    def sample() -> None:  # the engine's workers and their Chromium are our descendants
        while running.is_set():
            peak[0] = max(peak[0], tree_private_kib(os.getpid())[0] // 1024)
            time.sleep(0.05)

    with Engine(settings) as engine:
        engine.score_sync([html("<p>warm</p>", "warm-up")])
        baseline = tree_private_kib(os.getpid())[0] // 1024
        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.monotonic()
        result = engine.score_sync([html(bomb, "bomb")])[0]
        elapsed = time.monotonic() - start
        running.clear()
        sampler.join()
        after = engine.score_sync([html("<p>hello</p>", "after")])[0]
    # The html-code rule: an answer whose page crashes its renderer (or overruns the
    # render limit) scores 0.
    assert result.status in ("ok", "timeout") and result.reward == 0.0, result
    assert elapsed < settings.item_timeout_s
    # What the worker tree added stays under its 1024 MiB cap (plus one watch interval).
    assert peak[0] - baseline < 1024 + 256, f"grew by {peak[0] - baseline} MiB"
    assert after.status == "ok" and after.reward > 0.9


def test_a_retry_has_the_memory_cap_of_a_first_try(fake_answer_type: str) -> None:
    from reward_server import registry
    from reward_server.overrun import RetryPool, retry_verdict
    from reward_server.types import ItemContext

    settings = Settings(workers=1, item_timeout_s=20.0, worker_memory_mb=300)
    pool = RetryPool(settings)
    spec = registry.get(fake_answer_type)
    options = registry.build_options(fake_answer_type, {})
    try:
        def retried(answer: str) -> tuple[str, str | None]:
            future = pool.schedule(spec.module, answer, answer, options, ItemContext())
            verdict = retry_verdict(future, settings.item_timeout_s)
            return verdict.status, verdict.message

        assert retried("alloc:100")[0] == "ok"
        status, message = retried("alloc:2000")  # over the process's own limit
        assert status == "error" and "MemoryError" in (message or "")
        status, message = retried("children-alloc:3:200")  # the tree over it: the watchdog
        assert status == "error" and "REWARD_WORKER_MEMORY_MB" in (message or "")
    finally:
        pool.close()
