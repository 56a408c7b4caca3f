"""Start the real `reward-server serve` process (or another HTTP app) on a free loopback
port, for tests and benchmarks; wait until `/health` answers; stop it by PID."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(env: dict[str, str] | None = None, startup_s: float = 60.0) -> Iterator[str]:
    """Yield the base URL of a freshly started reward server; terminate it afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "services.cli", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning"]
    with running_process(command, port, env, startup_s) as url:
        yield url


@contextmanager
def running_app(app: str, env: dict[str, str] | None = None,
                startup_s: float = 60.0) -> Iterator[str]:
    """Yield the base URL of uvicorn serving `app` ("module:attribute"), which must answer
    `GET /health`; terminate it afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning"]
    with running_process(command, port, env, startup_s) as url:
        yield url


@contextmanager
def running_process(command: list[str], port: int, env: dict[str, str] | None = None,
                    startup_s: float = 60.0) -> Iterator[str]:
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[2]} exited with {process.returncode}")
            try:
                if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[2]} did not answer /health in time")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
