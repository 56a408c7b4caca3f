"""The Dockerfile and the compose file agree with the code (no Docker engine needed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
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
