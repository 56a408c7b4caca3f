"""The Dockerfile, the compose file and the balancer's config agree with the code and with
each other (no container engine needed; tests/deploy runs them for real)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import compose
import pytest

from reward_server.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# the package's Python wrapper always exits 0: call the bundled binary itself
COMPOSE = Path(compose.__file__).parent / "docker-compose"


def compose_config(**env: str) -> dict[str, Any]:
    result = subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_file_is_valid() -> None:
    result = subprocess.run([str(COMPOSE), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_only_the_balancer_publishes_ports_and_replicas_default_to_three() -> None:
    services = compose_config()["services"]
    assert set(services) == {"reward", "lb", "redis"}
    assert [name for name, s in services.items() if s.get("ports")] == ["lb"]
    ports = services["lb"]["ports"]
    assert [p["target"] for p in ports] == [8000, 50051]  # HTTP, gRPC
    assert {p["host_ip"] for p in ports} == {"127.0.0.1"}  # loopback unless REWARD_BIND
    assert services["reward"]["deploy"]["replicas"] == 3
    assert compose_config(REWARD_REPLICAS="5")["services"]["reward"]["deploy"]["replicas"] == 5
    assert services["lb"]["image"] == "haproxy:2.6" and services["redis"]["image"] == "redis:7.0"


def test_replicas_share_redis_unless_the_url_is_emptied() -> None:
    env = compose_config()["services"]["reward"]["environment"]
    assert env["REWARD_REDIS_URL"] == "redis://redis:6379/0"
    private = compose_config(REWARD_REDIS_URL="")["services"]["reward"]["environment"]
    assert Settings(redis_url=private["REWARD_REDIS_URL"]).redis_url is None
    for name in env:  # every variable the file sets is a real setting
        assert name.removeprefix("REWARD_").lower() in Settings.model_fields, name


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match, duration
    return int(match[1] or 0) * 60 + int(match[2] or 0)


def test_shutdown_is_graceful_and_outlasts_the_balancers_drain() -> None:
    services = compose_config()["services"]
    assert services["lb"]["stop_signal"] == "SIGUSR1"  # HAProxy's soft stop
    hard_stop = re.search(r"hard-stop-after (\d+)s", _haproxy_cfg())
    assert hard_stop and _seconds(services["lb"]["stop_grace_period"]) > int(hard_stop[1])
    assert _seconds(services["reward"]["stop_grace_period"]) >= 30
    assert services["reward"]["init"] is True


def _haproxy_cfg() -> str:
    return (ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text()


@pytest.mark.parametrize("directive", [
    "retry-on conn-failure empty-response response-timeout",  # a dead replica is invisible
    "option redispatch",                                       # retries go elsewhere
    "option httpchk GET /health",
    "parse-resolv-conf",                                       # Docker / podman DNS
    "server-template reward",
    "resolvers docker",
    "bind :8000",
    "bind :50051 proto h2",                                    # gRPC, h2c
    "server-template reward 16 reward:50051 proto h2 check-proto h1",  # health: HTTP/1
    "default-server check port 8000",                          # gRPC health via /health
])
def test_balancer_config_has(directive: str) -> None:
    assert directive in _haproxy_cfg()


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("reward_server", "services", "reward_client"):
        assert f"COPY {package} ./{package}" in dockerfile
        assert (ROOT / package).is_dir()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) == 3
    assert "COPY --from=deps /opt/venv /opt/venv" in dockerfile
    assert re.search(r"^USER reward$", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile and "/health" in dockerfile
    for package in ("chromium", "libatomic1", "libcairo2", "fonts-dejavu-core", "bubblewrap"):
        assert package in dockerfile, package
    assert 'CMD ["reward-server", "serve"]' in dockerfile


def test_dockerignore_admits_only_what_the_image_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text().split("\n")
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"
    admitted = {r.removeprefix("!").rstrip("/") for r in rules if r.startswith("!")}
    copied = set(re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M))
    assert admitted == {name for line in copied for name in line.split()}


def test_the_image_install_carries_the_known_answers(tmp_path: Path) -> None:
    # Build and install what the Dockerfile copies, then load the rows from there (away
    # from this checkout): `reward-server validate` in the image needs them.
    source = tmp_path / "src"
    source.mkdir()
    copied = re.findall(r"^COPY (\S+) \./\1$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert "reward_server" in copied and "services" in copied
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in copied:
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(source)],
                   check=True, capture_output=True, timeout=300)
    probe = ("import services.validate; from reward_server import known_answers as k; "
             "print(k.PACKAGE_DIR); print(len(k.load()))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(target)}, timeout=60)
    assert done.returncode == 0, done.stderr
    package_dir, count = done.stdout.split()
    assert Path(package_dir) == target / "reward_server" / "known_answers"
    shipped = sorted(p.name for p in (ROOT / "reward_server" / "known_answers").glob("*.jsonl"))
    assert sorted(p.name for p in Path(package_dir).glob("*.jsonl")) == shipped
    from reward_server import known_answers

    assert int(count) == len(known_answers.load(files=[
        ROOT / "reward_server" / "known_answers" / name for name in shipped]))
