"""A verifier module for engine tests: its behaviour is chosen by the extracted answer.

    sleep:<seconds>   sleeps, then scores 1 (overruns without computing: like an overload)
    spin:<seconds>    computes for that long, then scores 1 (overruns by its own cost)
    alarm             computes a little, then reports its own `timeout` (as Math-Verify's
                      signal.alarm does)
    idle-alarm        sleeps a little, then reports its own `timeout`
    refuse            a guard of the verifier refuses it: `rejected`
    extract-keyerror  `extract` itself raises KeyError (a bug, not an unknown type)
    crash             kills its own worker process
    raise...          raises, quoting the answer
    nan-score         scores NaN
    alloc:<MiB>       allocates that much in the worker, then scores 1
    children-alloc:<n>:<MiB>  starts n child processes that each allocate that much, wait
    inf-component     scores 1 with an infinite component
    warmed?           1.0 when this worker ran `warm_up()` before, else 0.0
    anything else     1.0 when it equals the reference, else 0.0
"""

from __future__ import annotations

import os
import subprocess
import sys
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
    bonus: float = option(
        0.0, "Added to a correct score (to test option plumbing).", ge=0.0, le=1.0
    )


_warmed = False


def warm_up() -> None:
    global _warmed
    _warmed = True


def extract(response: str, options: Options, context: ItemContext) -> str | None:
    answer = extract_tagged(response, options, context)
    if answer == "extract-keyerror":
        raise KeyError("a bug inside extract")
    return answer


def compare(extracted: str, reference: Any, options: Options, context: ItemContext) -> Verdict:
    if extracted.startswith("sleep:"):
        time.sleep(float(extracted.split(":", 1)[1]))
        return Verdict(1.0, {"slept": 1.0, "pid": float(os.getpid())})
    if extracted.startswith("spin:"):
        deadline = time.process_time() + float(extracted.split(":", 1)[1])
        while time.process_time() < deadline:
            pass
        return Verdict(1.0, {"spun": 1.0})
    if extracted in ("alarm", "idle-alarm"):
        if extracted == "alarm":
            deadline = time.process_time() + 0.3
            while time.process_time() < deadline:
                pass
        else:
            time.sleep(0.3)
        return Verdict(0.0, status="timeout", message="own time limit")
    if extracted == "refuse":
        return Verdict(0.0, status="rejected", message="over the verifier's size guard")
    if extracted == "crash":
        os._exit(3)
    if extracted.startswith("raise"):
        raise RuntimeError(f"deliberate failure: {extracted}")
    if extracted.startswith("alloc:"):
        block = bytearray(int(extracted.split(":", 1)[1]) * 2**20)
        return Verdict(1.0, {"allocated": float(len(block))})
    if extracted.startswith("children-alloc:"):
        count, mib = (int(x) for x in extracted.split(":")[1:])
        code = f"import time; b = bytearray({mib} * 2**20); time.sleep(30)"
        children = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]
        for child in children:
            child.wait()
        return Verdict(1.0, {"allocated": 0.0})
    if extracted == "nan-score":
        return Verdict(float("nan"), {"match": 0.0})
    if extracted == "inf-component":
        return Verdict(1.0, {"match": float("inf")})
    if extracted == "warmed?":
        return Verdict(1.0 if _warmed else 0.0, {"pid": float(os.getpid())})
    score = 1.0 if extracted == str(reference) else 0.0
    return Verdict(min(1.0, score + options.bonus), {"match": score, "pid": float(os.getpid())})
