"""The reward stack of docker-compose.yml, run for real: a container engine, the image
built from this checkout, `docker compose up` under a project name of its own on a free
loopback port, and `docker compose down` (containers, networks, volumes) afterwards,
whatever happened. Used by tests/deploy (the Kubernetes smoke run too) and bench/stack.py.

The container engine: the one `DOCKER_HOST` (or the default socket) already answers on,
else the machine's `shared/tools/container-engine up` (podman behind the Docker API, the
real `docker compose` plugin, local base images), found in the nearest parent folder of
the checkout (or of the local repository it was cloned from) that has `shared/` (a CI
clone sits beside it, a worktree deeper), or at
`REWARD_CONTAINER_ENGINE`.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.services.server_process import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENGINE_SCRIPT = Path("shared/tools/container-engine")
# What the image is built from (the Dockerfile's COPY lines and .dockerignore).
BUILD_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md",
                "reward_server", "services", "reward_client")


class StackError(RuntimeError):
    pass


def _run(args: list[str], env: dict[str, str], timeout: float = 300,
         check: bool = True, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout,
                            cwd=cwd)
    if check and result.returncode != 0:
        raise StackError(f"{shlex.join(args)} exited {result.returncode}:\n"
                         f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result


def _docker_answers(env: dict[str, str]) -> bool:
    try:
        return _run(["docker", "version", "--format", "{{.Server.Version}}"], env,
                    timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def engine_script() -> Path | None:
    explicit = os.environ.get("REWARD_CONTAINER_ENGINE")
    if explicit:
        return Path(explicit)
    for parent in _checkout_parents():
        if (parent / ENGINE_SCRIPT).is_file():
            return parent / ENGINE_SCRIPT
    return None


def _checkout_parents() -> list[Path]:
    """The folders above this checkout, then above the local repository it was cloned
    from (a clone under /tmp of a checkout that sits beside `shared/`)."""
    parents = list(ROOT.parents)
    origin = subprocess.run(["git", "config", "--get", "remote.origin.url"], cwd=ROOT,
                            capture_output=True, text=True, check=False).stdout.strip()
    if origin and Path(origin).is_dir():
        parents += list(Path(origin).resolve().parents)
    return parents


def container_engine_env() -> dict[str, str]:
    """The environment for `docker` and `docker compose` against a live engine."""
    env = dict(os.environ)
    if _docker_answers(env):
        return env
    script = engine_script()
    if script is None:
        raise StackError("no container engine answers and no shared/tools/container-engine "
                         f"was found above {ROOT}; set DOCKER_HOST or REWARD_CONTAINER_ENGINE")
    # Its first run installs podman and builds the base images: minutes. Run from "/": the
    # API service it starts outlives this checkout, and every container's monitor starts
    # in the service's working directory (one in a deleted checkout, such as an earlier
    # clean clone's, fails every container start: "write child: broken pipe").
    printed = _run([str(script), "up"], env, timeout=1500, cwd=Path("/")).stdout
    for line in printed.splitlines():
        words = shlex.split(line)
        if words[:1] == ["export"]:
            env.update(word.split("=", 1) for word in words[1:] if "=" in word)
    if not _docker_answers(env):
        raise StackError(f"{script} up printed {printed!r}, but docker still gets no answer")
    return env


def build_inputs_digest() -> str:
    digest = hashlib.blake2b(digest_size=6)
    for name in BUILD_INPUTS:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def build_image(env: dict[str, str]) -> str:
    """Build the Dockerfile (no pull: the base images are local); its tag names its inputs,
    so runs from other checkouts never race on one tag. Layers stay cached."""
    tag = f"reward-server:test-{build_inputs_digest()}"
    _run(["docker", "build", "-q", "-t", tag, str(ROOT)], env, timeout=1500)
    return tag


class Stack:
    """One `docker compose` project of docker-compose.yml."""

    def __init__(self, env: dict[str, str], image: str, replicas: int = 3,
                 settings: dict[str, str] | None = None) -> None:
        self.project = f"reward-test-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_port = free_port()
        self.grpc_url = f"grpc://127.0.0.1:{self.grpc_port}"
        self.replicas = replicas
        self.env = {**env, "REWARD_IMAGE": image, "REWARD_HTTP_PORT": str(self.port),
                    "REWARD_STACK_GRPC_PORT": str(self.grpc_port),
                    "REWARD_BIND": "127.0.0.1", "REWARD_REPLICAS": str(replicas),
                    **(settings or {})}

    def compose(self, *args: str, timeout: float = 300,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["docker", "compose", "-f", str(COMPOSE_FILE), "-p", self.project, *args],
                    self.env, timeout=timeout, check=check)

    def docker(self, *args: str, timeout: float = 120,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["docker", *args], self.env, timeout=timeout, check=check)

    def up(self) -> None:
        self.compose("up", "-d", "--no-build", "--pull", "never", timeout=600)

    def restore(self, *containers: str) -> None:
        """Start what a test stopped or killed: `docker compose up -d` (`--no-recreate`:
        through podman's Docker API compose takes every container for changed and would
        recreate the whole stack, balancer included), or the given containers themselves,
        as they were."""
        if containers:
            self.docker("start", *containers, timeout=300)
        else:
            self.compose("up", "-d", "--no-build", "--pull", "never", "--no-recreate",
                         timeout=600)

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "70", timeout=600)

    def containers(self, service: str = "reward", running: bool = True) -> list[str]:
        args = ["ps", "-q", service] if running else ["ps", "-a", "-q", service]
        return self.compose(*args).stdout.split()

    def wait_ready(self, replicas: int | None = None, within_s: float = 180) -> set[str]:
        """Wait until the balancer has routed `/health` to `replicas` distinct replicas."""
        want = self.replicas if replicas is None else replicas
        seen: set[str] = set()
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                response = httpx.get(self.url + "/health", timeout=5)
                if response.status_code == 200:
                    seen.add(response.headers["x-reward-replica"])
                    if len(seen) >= want and len(self.containers()) >= want:
                        return seen
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        logs = self.compose("logs", "--tail", "30", check=False).stdout
        raise StackError(f"{want} replicas not behind the balancer after {within_s}s "
                         f"(seen {sorted(seen)}):\n{logs[-6000:]}")

    def replica_get(self, container: str, path: str) -> str:
        """GET a path on one replica from inside its container (replicas publish no port)."""
        code = ("import urllib.request, sys; sys.stdout.write(urllib.request.urlopen("
                f"'http://127.0.0.1:8000{path}', timeout=10).read().decode())")
        return self.docker("exec", container, "python3", "-c", code).stdout

    def cpu_seconds(self, service: str = "reward") -> float:
        """CPU time the service's containers have used, all their processes (the
        container's cgroup: v2 `cpu.stat`, else v1 `cpuacct.usage`)."""
        read = ("if [ -r /sys/fs/cgroup/cpu.stat ]; then "
                "echo usec $(sed -n 's/^usage_usec //p' /sys/fs/cgroup/cpu.stat); "
                "else echo nsec $(cat /sys/fs/cgroup/cpuacct/cpuacct.usage); fi")
        total = 0.0
        for container in self.containers(service):
            unit, value = self.docker("exec", container, "sh", "-c", read).stdout.split()
            total += int(value) / (1e6 if unit == "usec" else 1e9)
        return total

    def metric_totals(self) -> dict[str, float]:
        """Every replica's samples summed by name and labels, e.g.
        `reward_cache_hits_total{tier="redis"}`."""
        totals: dict[str, float] = {}
        for container in self.containers():
            text = self.replica_get(container, "/metrics")
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                    name = f"{sample.name}{{{labels}}}" if labels else sample.name
                    totals[name] = totals.get(name, 0.0) + sample.value
        return totals


@contextmanager
def running_stack(env: dict[str, str], image: str, replicas: int = 3,
                  settings: dict[str, str] | None = None) -> Iterator[Stack]:
    """A stack that is up and behind the balancer; brought down whatever happens."""
    stack = Stack(env, image, replicas, settings)
    try:
        stack.up()
        stack.wait_ready()
        yield stack
    finally:
        stack.down()
