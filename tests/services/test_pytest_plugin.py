"""`pytest --reward-url URL`: the known-answer suite in a user's own CI."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path


def run_pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # From an empty directory, as a user's CI would: only the plugin's suite is collected.
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd, capture_output=True, text=True, timeout=900,
    )


def test_the_plugin_is_installed_with_the_package() -> None:
    plugins = {ep.value for ep in entry_points(group="pytest11")}
    assert "services.pytest_plugin" in plugins


def test_the_plugin_loads_no_client_code() -> None:
    """The plugin loads in every pytest run where the package is installed: without
    `--reward-url` it must cost nothing (no validation code, no HTTP client)."""
    code = ("import sys, services.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m == 'services.validate' "
            "or m.split('.')[0] in ('httpx', 'grpc', 'reward_client')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_passes_against_the_real_server(known_answer_server: str, tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "--reward-url", known_answer_server,
                      "--reward-answer-types", "number,bbox", "-v", "-rA")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "test_known_answers[bbox] PASSED" in done.stdout
    assert "test_known_answers[number] PASSED" in done.stdout
    assert "2 passed" in done.stdout


def test_fails_against_a_wrong_server(wrong_server: str, tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "--reward-url", wrong_server,
                      "--reward-answer-types", "number,critic")
    assert done.returncode == 1, done.stdout[-3000:]
    assert "2 failed" in done.stdout
    assert "number: " in done.stdout and "number.jsonl:" in done.stdout
    assert "critic.jsonl" not in done.stdout and "exact.jsonl:" in done.stdout
    # a looser threshold for the type passes it
    loose = run_pytest(tmp_path, "--reward-url", wrong_server, "--reward-answer-types",
                       "critic", "--reward-min-agreement", "critic=0.5")
    assert loose.returncode == 0, loose.stdout[-3000:]


def test_an_unknown_answer_type_is_a_usage_error(wrong_server: str, tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "--reward-url", wrong_server, "--reward-answer-types", "haiku")
    assert done.returncode != 0 and "passed" not in done.stdout
    assert "no known answers for haiku" in done.stdout + done.stderr


def test_without_the_url_the_plugin_adds_nothing(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text("def test_mine():\n    assert 1 + 1 == 2\n")
    done = run_pytest(tmp_path)
    assert done.returncode == 0 and "1 passed" in done.stdout
