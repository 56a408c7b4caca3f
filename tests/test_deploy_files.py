"""The Dockerfile and the compose file agree with the code (no Docker engine needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import compose

ROOT = Path(__file__).resolve().parents[1]


def test_compose_file_is_valid() -> None:
    # the package's Python wrapper always exits 0: call the bundled binary itself
    binary = Path(compose.__file__).parent / "docker-compose"
    result = subprocess.run([str(binary), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_dockerfile_copies_every_package_and_serves_the_cli() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("reward_server", "services", "reward_client"):
        assert f"COPY {package} ./{package}" in dockerfile
        assert (ROOT / package).is_dir()
    assert 'CMD ["reward-server", "serve"]' in dockerfile
