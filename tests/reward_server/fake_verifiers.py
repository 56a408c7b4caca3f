"""A verifier module for engine tests: its behaviour is chosen by the extracted answer.

    sleep:<seconds>   sleeps, then scores 1 (to overrun the item timeout)
    crash             kills its own worker process
    raise             raises
    anything else     1.0 when it equals the reference, else 0.0
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from reward_server.registry import VerifierSpec
from reward_server.types import ItemContext, Verdict
from reward_server.verifiers.base import BaseOptions, extract_tagged, option

# registered as `test-fake` by tests/conftest.py and tests/services/fake_server.py
SPEC = VerifierSpec("test-fake", __name__, "anything",
                    "test verifier: sleeps, crashes or raises on demand")


@dataclass(frozen=True)
class Options(BaseOptions):
    bonus: float = option(0.0, "Added to a correct score (to test option plumbing).")  # type: ignore[assignment]


def extract(response: str, options: Options, context: ItemContext) -> str | None:
    return extract_tagged(response, options, context)


def compare(extracted: str, reference: Any, options: Options, context: ItemContext) -> Verdict:
    if extracted.startswith("sleep:"):
        time.sleep(float(extracted.split(":", 1)[1]))
        return Verdict(1.0, {"slept": 1.0})
    if extracted == "crash":
        os._exit(3)
    if extracted == "raise":
        raise RuntimeError("deliberate failure")
    score = 1.0 if extracted == str(reference) else 0.0
    return Verdict(min(1.0, score + options.bonus), {"match": score, "pid": float(os.getpid())})
