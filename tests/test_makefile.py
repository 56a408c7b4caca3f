"""The Makefile's address knobs: `make serve` binds what PORT/HOST or the service's own
REWARD_PORT/REWARD_HOST say (checked with `make -n`, which prints without running)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def serve_command(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("PORT", "HOST", "REWARD_PORT", "REWARD_HOST")}
    done = subprocess.run(["make", "-n", "serve"], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=True, env={**clean, **env})
    return next(line for line in done.stdout.splitlines() if "reward-server serve" in line)


@pytest.mark.parametrize(
    "env,host,port",
    [
        ({}, "127.0.0.1", "8000"),
        ({"REWARD_PORT": "9001"}, "127.0.0.1", "9001"),
        ({"REWARD_PORT": "9001", "REWARD_HOST": "0.0.0.0"}, "0.0.0.0", "9001"),
        ({"PORT": "9002", "REWARD_PORT": "9001"}, "127.0.0.1", "9002"),  # the short form wins
    ],
)
def test_make_serve_binds_the_configured_address(env: dict[str, str], host: str, port: str):
    assert serve_command(**env).endswith(f"serve --host {host} --port {port}")
