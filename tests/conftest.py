"""Suite-wide fixtures: test-only answer types and a small engine."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from reward_server import registry
from reward_server.engine import Engine
from reward_server.settings import Settings
from tests.reward_server.fake_verifiers import SPEC

FAKE = SPEC.name

# Workers of the many engines and servers the tests start skip the warm-up (a Chromium
# launch per worker); the tests of the warm-up itself ask for it.
os.environ.setdefault("REWARD_WARM_UP", "false")


@pytest.fixture(scope="session")
def fake_answer_type() -> Iterator[str]:
    """Registers `test-fake` (tests/reward_server/fake_verifiers.py) for the session."""
    registry.register(SPEC)
    yield FAKE
    registry.unregister(FAKE)


@pytest.fixture(scope="module")
def engine(fake_answer_type: str) -> Iterator[Engine]:
    with Engine(Settings(workers=2, item_timeout_s=1.5, cache_size=1000)) as eng:
        yield eng
