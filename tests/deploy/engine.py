"""The container engine for the deploy tests: a Docker API (podman behind it on this kind
of machine, via `../shared/tools/container-engine`), and the image built from the
repository's Dockerfile."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
# `shared/` lies beside the checkout (a clone or a worktree of this workplace)
ENGINE_SCRIPTS = [ROOT.parent / "shared" / "tools" / "container-engine",
                  Path("/work/shared/tools/container-engine")]


def container_env() -> dict[str, str]:
    """The environment for `docker`/`podman`: the engine is started if it is not up.

    On a machine with a Docker engine of its own (DOCKER_HOST set, or no engine script
    here), the current environment is used as it is.
    """
    env = dict(os.environ)
    script = next((s for s in ENGINE_SCRIPTS if s.exists()), None)
    if script is None:
        return env
    out = subprocess.run(["bash", str(script), "up"], check=True, capture_output=True,
                         text=True, timeout=900).stdout
    for line in out.splitlines():
        if line.startswith("export "):
            for assignment in shlex.split(line[len("export "):]):
                key, _, value = assignment.partition("=")
                env[key] = value
    return env


def build_image(env: dict[str, str], tag: str) -> None:
    """Build the repository's Dockerfile as `tag` (docker format: it keeps HEALTHCHECK).

    Tried twice: a package download inside the build can fail once on a flaky network.
    """
    for _ in range(2):
        result = subprocess.run(
            ["podman", "build", "-q", "--format", "docker", "-t", tag, str(ROOT)],
            env=env, capture_output=True, text=True, timeout=1500,
        )
        if result.returncode == 0:
            return
    raise RuntimeError(f"image build failed ({result.returncode}):\n{result.stderr[-3000:]}")


def wait_for_health(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url + "/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}/health did not answer within {timeout_s:.0f} s")
        time.sleep(1.0)
