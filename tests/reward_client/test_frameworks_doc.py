"""docs/frameworks.md: every Python snippet runs against a live server, and every URL path
the shell snippets give is an endpoint of the app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from reward_server.settings import Settings
from services.http import build_app
from tests.services.server_process import running_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "frameworks.md"
BLOCKS = re.findall(r"```(python|bash)\n(.*?)```", DOC.read_text(), flags=re.S)
PYTHON = [code for lang, code in BLOCKS if lang == "python"]
BASH = [code for lang, code in BLOCKS if lang == "bash"]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_server({"REWARD_WORKERS": "1"}) as base_url:
        yield base_url


@pytest.mark.parametrize("code", PYTHON, ids=[f"python-{i}" for i in range(len(PYTHON))])
def test_python_snippet_runs(code: str, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARD_URL", url)
    exec(compile(code, str(DOC), "exec"), {})  # noqa: S102 - our own documentation


def test_every_documented_endpoint_exists() -> None:
    routes = set(build_app(Settings(workers=1)).openapi()["paths"])
    paths = {path for code in BASH for path in re.findall(r"http://HOST:8000(/[a-z]+)", code)}
    assert paths == {"/openrlhf", "/slime"} and paths <= routes
    modules = {m for code in BASH for m in re.findall(r"reward_client\.[a-z_.]+", code)}
    for dotted in modules:
        module, _, name = dotted.rpartition(".")
        if module == "reward_client":  # `reward_client.verl as m`: a module itself
            __import__(dotted)
            continue
        assert hasattr(__import__(module, fromlist=[name]), name), dotted
    assert len(PYTHON) >= 4
