"""Servers shared by the services tests: the real one (HTTP and gRPC) and a deliberately
wrong one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services.server_process import ServerProcess, running_app, server_process


@pytest.fixture(scope="session")
def known_answer_process() -> Iterator[ServerProcess]:
    """The real server, with an item limit that a loaded test machine cannot overrun:
    a cold Chromium launch alone can take several seconds there."""
    env = {"REWARD_WORKERS": "2", "REWARD_ITEM_TIMEOUT_S": "60"}
    with server_process(env, grpc=True) as server:
        yield server


@pytest.fixture(scope="session")
def known_answer_server(known_answer_process: ServerProcess) -> str:
    return known_answer_process.url


@pytest.fixture(scope="session")
def known_answer_grpc(known_answer_process: ServerProcess) -> str:
    return f"grpc://{known_answer_process.grpc_target}"


@pytest.fixture(scope="session")
def wrong_server() -> Iterator[str]:
    with running_app("tests.services.wrong_server:app") as url:
        yield url
