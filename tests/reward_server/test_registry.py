"""The registry's lazy imports from several threads at once (engines extract on threads)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from reward_server.registry import VerifierSpec


def test_a_verifier_imported_by_several_threads_at_once_is_whole_for_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every thread that asks for a verifier while another imports it gets the finished
    module: none sees it half made (no `Options` yet), as threads did that read
    sys.modules while the first import ran."""
    (tmp_path / "slow_verifier_for_test.py").write_text(
        "import time\ntime.sleep(0.5)\nOptions = 'made'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_verifier_for_test", raising=False)
    spec = VerifierSpec("slow", "slow_verifier_for_test", "anything", "a slow import")
    seen: list[object] = []
    failures: list[BaseException] = []

    def load() -> None:
        try:
            seen.append(spec.load().Options)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    first = threading.Thread(target=load)
    first.start()
    deadline = time.monotonic() + 5
    while "slow_verifier_for_test" not in sys.modules and time.monotonic() < deadline:
        time.sleep(0.001)  # the first import has begun: the module is there, half made
    others = [threading.Thread(target=load) for _ in range(7)]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(10)
    assert failures == [] and seen == ["made"] * 8
