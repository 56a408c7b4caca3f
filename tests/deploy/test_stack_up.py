"""`Stack.up` tries again only when the container engine failed to start a container."""

from __future__ import annotations

import subprocess

import pytest

from tests.deploy import stack as stack_module
from tests.deploy.stack import ENGINE_START_FAILURES, Stack, StackError


class ScriptedStack(Stack):
    """A stack whose `docker compose` calls fail as scripted (no engine involved)."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__({}, "image")
        self.failures = failures
        self.calls: list[str] = []

    def compose(self, *args: str, timeout: float = 300,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        self.calls.append(args[0])
        if args[0] == "up" and self.failures:
            raise StackError(f"docker compose up exited 1:\n{self.failures.pop(0)}")
        return subprocess.CompletedProcess(list(args), 0, "", "")


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack_module.time, "sleep", lambda _s: None)


def test_an_engine_start_failure_is_tried_again_after_a_down() -> None:
    scripted = ScriptedStack([ENGINE_START_FAILURES[0]])
    scripted.up()
    assert scripted.calls == ["up", "down", "up"]


def test_a_failure_of_the_stack_is_not_tried_again() -> None:
    scripted = ScriptedStack(["dependency failed to start: container lb-1 is unhealthy"])
    with pytest.raises(StackError, match="unhealthy"):
        scripted.up()
    assert scripted.calls == ["up"]


def test_the_engine_failing_every_time_ends_in_the_error() -> None:
    scripted = ScriptedStack([ENGINE_START_FAILURES[0]] * 5)
    with pytest.raises(StackError, match="broken pipe"):
        scripted.up(attempts=3)
    assert scripted.calls == ["up", "down", "up", "down", "up"]
