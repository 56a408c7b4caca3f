"""Start the real `reward-server serve` process on a free loopback port (for tests and
benchmarks), wait until `/health` answers, stop it by PID."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(
    env: dict[str, str] | None = None,
    startup_s: float = 60.0,
    log_path: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[str]:
    """Yield the base URL of a freshly started server; terminate it afterwards.

    `log_path` receives the server's stderr (its log); `preexec_fn` runs in the child
    before it starts (to set resource limits).
    """
    port = free_port()
    log_file = open(log_path, "wb") if log_path is not None else None  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stderr=log_file,
        preexec_fn=preexec_fn,  # noqa: PLW1509 - only resource limits, set by tests
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"reward server exited with {process.returncode}")
            try:
                if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("reward server did not answer /health in time")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log_file is not None:
            log_file.close()
