"""The registry's lazy imports from several threads at once (engines extract on threads)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from reward_server import registry
from reward_server.registry import VerifierSpec


def test_a_verifier_imported_by_several_threads_at_once_is_whole_for_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every thread that asks for a verifier while another imports it gets the finished
    module: none sees it half made (no `Options` yet), as threads did that read
    sys.modules while the first import ran."""
    gate = tmp_path / "gate"
    # the import ends once the test opens the gate (after the other threads have asked)
    (tmp_path / "slow_verifier_for_test.py").write_text(
        "import os, time\n"
        "deadline = time.monotonic() + 10\n"
        f"while not os.path.exists({str(gate)!r}) and time.monotonic() < deadline:\n"
        "    time.sleep(0.005)\n"
        "Options = 'made'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_verifier_for_test", raising=False)
    monkeypatch.setattr(registry, "_LOADED", {})
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
    time.sleep(0.2)  # they have asked, while the first import waits at the gate
    gate.touch()
    for thread in [first, *others]:
        thread.join(10)
    assert failures == [] and seen == ["made"] * 8


def test_unregistering_a_modules_last_answer_type_forgets_the_loaded_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module registered again after its answer types were removed is imported again
    (its new code is what runs), while a module another answer type still uses stays."""
    (tmp_path / "changing_verifier_for_test.py").write_text("Options = 'first'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "changing_verifier_for_test", raising=False)
    monkeypatch.setattr(registry, "_LOADED", {})
    one = registry.register(
        VerifierSpec("changing-a", "changing_verifier_for_test", "anything", "a"))
    two = registry.register(
        VerifierSpec("changing-b", "changing_verifier_for_test", "anything", "b"))
    try:
        assert one.load().Options == "first"
        registry.unregister("changing-a")
        assert "changing_verifier_for_test" in registry._LOADED  # "changing-b" uses it
        registry.unregister("changing-b")
        assert "changing_verifier_for_test" not in registry._LOADED
        (tmp_path / "changing_verifier_for_test.py").write_text("Options = 'second'\n")
        del sys.modules["changing_verifier_for_test"]
        registry.register(two)
        assert two.load().Options == "second"
    finally:
        registry.unregister("changing-a")
        registry.unregister("changing-b")
