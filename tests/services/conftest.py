"""Servers shared by the services tests: the real one and a deliberately wrong one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services.server_process import running_app, running_server


@pytest.fixture(scope="session")
def known_answer_server() -> Iterator[str]:
    """The real server, with an item limit that a loaded test machine cannot overrun:
    a cold Chromium launch alone can take several seconds there."""
    with running_server({"REWARD_WORKERS": "2", "REWARD_ITEM_TIMEOUT_S": "60"}) as url:
        yield url


@pytest.fixture(scope="session")
def wrong_server() -> Iterator[str]:
    with running_app("tests.services.wrong_server:app") as url:
        yield url
