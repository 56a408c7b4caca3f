"""The verdict cache: identical answers in a GRPO group are verified once.

A key is (answer type, verifier code version, extracted answer, reference, options,
choices): everything `compare` sees, and which code judged it, so a key can be shared by
replicas and outlive a deployment (`reward_server.redis_cache`). Only `ok` verdicts are
stored; timeouts and errors are retried next time, since they may come from load rather
than from the input.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Protocol

from reward_server.types import Verdict


def verdict_key(
    answer_type: str,
    verifier_version: str,
    extracted: str,
    reference_json: str,
    options_json: str,
    choices_json: str,
) -> str:
    digest = hashlib.blake2b(digest_size=20)
    for part in (answer_type, verifier_version, extracted, reference_json, options_json,
                 choices_json):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


class VerdictCache(Protocol):
    def get(self, key: str) -> Verdict | None: ...

    def put(self, key: str, verdict: Verdict) -> None: ...

    def stats(self) -> dict[str, int]: ...


class LRUVerdictCache:
    """A thread-safe in-process LRU of verdicts."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._entries: OrderedDict[str, Verdict] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Verdict | None:
        with self._lock:
            verdict = self._entries.get(key)
            if verdict is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return verdict

    def put(self, key: str, verdict: Verdict) -> None:
        if self.max_size <= 0:
            return
        with self._lock:
            self._entries[key] = verdict
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "size": len(self._entries),
                "max_size": self.max_size,
                "hits": self.hits,
                "misses": self.misses,
            }
