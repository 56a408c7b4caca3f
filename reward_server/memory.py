"""A memory cap for each verifier worker process and everything it starts.

`cap_worker_memory(limit_mb)` runs in a worker process (the engine's pool initializer):

- It sets the worker's `RLIMIT_DATA` (heap and other private writable memory) to what
  it holds plus the cap, which the processes it starts inherit: an allocation past it
  fails, a Python verifier gets `MemoryError` (its item an `error`). Chromium's launcher
  lifts it (its renderers need more to start; `reward_server.netns`): Chromium is held
  by V8's heap limit (a page over it crashes, its render scored) and by the watchdog.
- Per-process limits do not bound a tree of processes, so a watchdog thread sums the
  private resident memory (`RssAnon`) of the worker and its descendants every
  `WATCH_INTERVAL_S`; more than the cap over the worker's own at start, it kills the
  descendants and the worker itself with exit code `MEMORY_EXIT_CODE`. The engine
  reports that item as over the memory limit and replaces the worker. Finding the
  descendants means reading every process's `stat` (about 50 ms for 300 processes here),
  so the tree is rescanned every `RESCAN_S`; a process started in between is held by its
  own `RLIMIT_DATA` until then.

The bound per worker is therefore the cap plus what can be allocated in one watch
interval. Linux only (it reads `/proc`).
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

# A worker killed by its watchdog exits with this code, which the engine reports.
MEMORY_EXIT_CODE = 86
# The error of an item whose verification was killed for it.
MEMORY_CAP_MESSAGE = ("verification exceeded the worker memory cap (REWARD_WORKER_MEMORY_MB); "
                      "the worker was killed")
WATCH_INTERVAL_S = 0.1
RESCAN_S = 2.0


def cap_worker_memory(limit_mb: int) -> None:
    """Let this process and its descendants add at most `limit_mb` MiB to what the process
    holds now (see the module docstring).

    Measured from now: a worker forked from the server starts with the server's memory
    mapped (shared copy-on-write, but counted as its own by the kernel), and a cap on the
    total would fail every allocation, or kill the worker before it ran an item, whenever
    the server itself is large.
    """
    cap_kib = limit_mb * 1024
    limit = (_status_kib(os.getpid(), "VmData:") + cap_kib) * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    baseline = _private_kib(os.getpid())
    watchdog = threading.Thread(
        target=_watch, args=(os.getpid(), baseline + cap_kib), name="memory-watchdog",
        daemon=True,
    )
    watchdog.start()


def tree_private_kib(root: int) -> tuple[int, list[int]]:
    """The summed `RssAnon` (KiB) of `root` and its descendants, and the descendants."""
    descendants = descendants_of(root)
    return _private_total(root, descendants), descendants


def _private_total(root: int, descendants: list[int]) -> int:
    return sum(_private_kib(pid) for pid in [root, *descendants])


def descendants_of(root: int) -> list[int]:
    """The process ids below `root`, parents before children."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            parent = int(stat.rsplit(b")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    descendants, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            descendants.append(child)
            stack.append(child)
    return descendants


def _private_kib(pid: int) -> int:
    return _status_kib(pid, "RssAnon:")


def _status_kib(pid: int, key: str) -> int:
    """A `kB` line of /proc/<pid>/status (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _watch(root: int, limit_kib: int) -> None:
    descendants: list[int] = []
    scanned = -RESCAN_S
    while True:
        time.sleep(WATCH_INTERVAL_S)
        if time.monotonic() - scanned >= RESCAN_S:
            descendants, scanned = descendants_of(root), time.monotonic()
        if _private_total(root, descendants) <= limit_kib:
            continue
        # Recount on a fresh scan before killing: a pid of the last scan may be reused.
        used, descendants = tree_private_kib(root)
        if used <= limit_kib:
            continue
        log.error("worker %d and its %d child processes use %d MiB, over their limit of %d "
                  "MiB (REWARD_WORKER_MEMORY_MB over the start): killing them", root,
                  len(descendants), used // 1024, limit_kib // 1024)
        for pid in reversed(descendants):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(MEMORY_EXIT_CODE)
