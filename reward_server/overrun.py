"""Telling an overrun caused by the response from one caused by load.

A response that makes its verification overrun (a power tower, a pathological SVG) must
not escape the penalty of a wrong answer: a trainer leaves `timeout` items out of the
advantages, so a policy could learn to emit them. A busy machine can make an innocent
item overrun too, and that item must not be scored 0. The engine tells them apart thus:

1. An item whose verification overruns (its worker is killed at `item_timeout_s`, or the
   verifier reports its own `timeout`) is verified once more, alone: in a fresh process of
   a separate retry pool that runs nothing else, under a CPU-time budget of
   `item_timeout_s` (the kernel's RLIMIT_CPU) and a wall-clock limit of
   `RETRY_WALL_FACTOR` times that.
2. The retry decides:
   - it finishes: its verdict counts (the first overrun was load);
   - the kernel stops it for spending its CPU budget (SIGXCPU), or the verifier reports
     `timeout` again after computing for at least 1/`RETRY_WALL_FACTOR` of the time it
     ran: the response itself is too costly to verify, status `rejected` (reward 0,
     scored as a wrong answer by every client);
   - the wall-clock limit fires first: the process was starved of CPU, the service is
     overloaded, status stays `timeout` (excluded, a fault of the service);
   - the process dies otherwise: `error`.
CPU time, not wall time, is the evidence: it counts only what this item computed,
whatever else the machine runs. Work done in other processes (a browser rendering a page
with a script loop) is not counted as this process's computing, so such overruns stay
`timeout`: the html-code verifier bounds them with its own render limit.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import logging
import math
import resource
import signal
import time
from typing import Any

from pebble import ProcessExpired, ProcessPool

from reward_server.memory import MEMORY_CAP_MESSAGE, MEMORY_EXIT_CODE, cap_worker_memory
from reward_server.settings import Settings, adopt
from reward_server.types import ItemContext, Verdict

log = logging.getLogger(__name__)

# The retry's wall-clock limit, in multiples of its CPU budget: a process that gets at
# least 1/RETRY_WALL_FACTOR of a core (a healthy service) reaches its CPU budget first. A
# verifier-reported timeout on the retry is the response's fault when the process
# computed for at least that share of the time it ran.
RETRY_WALL_FACTOR = 3.0


def _compare_on_a_budget(
    module: str, extracted: str, reference: Any, options: Any, context: ItemContext,
    budget_s: float, busy_share: float,
) -> Verdict:
    """What a retry worker runs: `compare` under a CPU-time budget (RLIMIT_CPU).

    The module is imported first, so the budget counts the comparison only. The soft
    limit sends SIGXCPU, whose default action ends the process at once, even inside C
    code that never returns to the interpreter.
    """
    compare = importlib.import_module(module).compare
    usage = resource.getrusage(resource.RUSAGE_SELF)
    limit = math.ceil(usage.ru_utime + usage.ru_stime + budget_s)
    resource.setrlimit(resource.RLIMIT_CPU, (limit, limit + 1))
    cpu_started, wall_started = time.process_time(), time.monotonic()
    verdict = compare(extracted, reference, options, context)
    if not isinstance(verdict, Verdict):
        raise TypeError(f"{module}.compare returned {type(verdict).__name__}, not Verdict")
    busy = time.process_time() - cpu_started
    ran = time.monotonic() - wall_started
    if verdict.status == "timeout" and busy >= busy_share * ran:
        return Verdict(0.0, verdict.components, status="rejected", message=(
            f"verification overran twice while computing ({busy:.1f}s of CPU in "
            f"{ran:.1f}s): {verdict.message}"))
    return verdict


def _start_retry_process(settings: Settings) -> None:
    """Retry-process initializer: the engine's settings, and the memory cap its workers
    have (`reward_server.memory`): a retry may not use more than the first try could."""
    adopt(settings)
    cap_worker_memory(settings.worker_memory_mb)


class RetryPool:
    """The separate pool that re-verifies overrunning items, one fresh process each."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workers, self.budget_s = settings.retry_workers, settings.item_timeout_s
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPool:
        return ProcessPool(max_workers=self.workers, max_tasks=1,
                           initializer=_start_retry_process, initargs=(self.settings,))

    def schedule(
        self, module: str, extracted: str, reference: Any, options: Any, context: ItemContext
    ) -> concurrent.futures.Future[Verdict]:
        if not self._pool.active:
            log.warning("retry pool was stopped; starting a new one")
            self._pool = self._new_pool()
        return self._pool.schedule(
            _compare_on_a_budget,
            args=(module, extracted, reference, options, context, self.budget_s,
                  1.0 / RETRY_WALL_FACTOR),
            timeout=RETRY_WALL_FACTOR * self.budget_s + 1.0,
        )

    def close(self) -> None:
        self._pool.stop()
        self._pool.join(timeout=10)


def retry_verdict(future: concurrent.futures.Future[Verdict], budget_s: float) -> Verdict:
    """The verdict of a finished retry (see the module docstring)."""
    try:
        return future.result()
    except TimeoutError:
        return Verdict(0.0, status="timeout", message=(
            "verifier exceeded the item timeout twice without getting the CPU to finish: "
            "the service is overloaded"))
    except ProcessExpired as exc:
        if exc.exitcode == -signal.SIGXCPU:
            return Verdict(0.0, status="rejected", message=(
                f"verifying this response used more than its {budget_s:g}s of CPU time, "
                "twice"))
        if exc.exitcode == MEMORY_EXIT_CODE:
            return Verdict(0.0, status="error", message=MEMORY_CAP_MESSAGE)
        return Verdict(0.0, status="error", message=f"verifier worker died: {exc}")
    except concurrent.futures.CancelledError:
        return Verdict(0.0, status="error", message="verification was cancelled")
    except Exception as exc:  # noqa: BLE001 - the verifier raised: report it on this item only
        return Verdict(0.0, status="error", message=f"{type(exc).__name__}: {exc}")
