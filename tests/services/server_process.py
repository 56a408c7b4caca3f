"""Start the real `reward-server serve` process on free loopback ports (for tests and
benchmarks), wait until `/health` (and the gRPC health service) answers, stop it by PID.

`with_fakes=True` starts it through `tests/services/fake_server.py`, which registers the
test-only `test-fake` answer type (sleeps, crashes or raises on demand) before the CLI.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A started server: its HTTP base URL, its gRPC target (`host:port`, or None), the
    process."""

    url: str
    grpc_target: str | None
    process: subprocess.Popen[bytes]


def _grpc_serving(target: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1.0
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


@contextmanager
def server_process(
    env: dict[str, str] | None = None,
    startup_s: float = 60.0,
    grpc: bool = False,
    with_fakes: bool = False,
    log_path: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[ServerProcess]:
    """Yield a freshly started server (HTTP, and gRPC when asked); terminate it afterwards.

    `log_path` receives the server's stderr (its log); `preexec_fn` runs in the child
    before it starts (to set resource limits).
    """
    port = free_port()
    grpc_port = free_port() if grpc else 0
    entry = "tests.services.fake_server" if with_fakes else "services.cli"
    log_file = open(log_path, "wb") if log_path is not None else None  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", entry, "serve", "--host", "127.0.0.1", "--port", str(port),
         "--grpc-port", str(grpc_port), "--log-level", "warning"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stderr=log_file,
        preexec_fn=preexec_fn,  # noqa: PLW1509 - only resource limits, set by tests
    )
    server = ServerProcess(f"http://127.0.0.1:{port}",
                           f"127.0.0.1:{grpc_port}" if grpc else None, process)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"reward server exited with {process.returncode}")
            try:
                if httpx.get(server.url + "/health", timeout=1.0).status_code == 200 and (
                    server.grpc_target is None or _grpc_serving(server.grpc_target)
                ):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("reward server did not answer /health in time")
            time.sleep(0.2)
        yield server
    finally:
        stop_process(process)
        if log_file is not None:
            log_file.close()


@contextmanager
def running_server(
    env: dict[str, str] | None = None,
    startup_s: float = 60.0,
    log_path: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[str]:
    """Yield the base URL of a freshly started HTTP-only server; terminate it afterwards."""
    with server_process(env, startup_s, log_path=log_path, preexec_fn=preexec_fn) as server:
        yield server.url


@contextmanager
def running_app(app: str, startup_s: float = 60.0) -> Iterator[str]:
    """Yield the base URL of uvicorn serving another HTTP app ("module:attribute", which
    must answer `GET /health`), e.g. a deliberately wrong server; terminate it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, startup_s, process=process)
        yield url
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 15 s."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_health(url: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None,
                    interval_s: float = 0.2) -> None:
    """Wait until `url/health` answers 200; RuntimeError when `process` exits first or the
    time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server behind {url} exited with {process.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}/health did not answer within {timeout_s:.0f} s")
        time.sleep(interval_s)
