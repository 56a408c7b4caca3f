"""Fixtures of the trainer tests: a real reward server process and tiny offline models.

The reward server is the project's own (`python -m services.cli serve`, started by
`tests/services/server_process.py`), once per session on a free port, stopped at the end;
the trainer reaches it over HTTP only, as in production. The tiny models are built offline by
`trainer_client.tiny_models` (no hub access: HF_HUB_OFFLINE is set before anything loads).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.server_process import running_server

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def reward_server() -> Iterator[str]:
    """Base URL of a reward server process started for this session (one verifier worker:
    the tests score a few hundred items at a time and share two cores with the model)."""
    with running_server(env={"REWARD_WORKERS": "1"}, startup_s=90.0) as url:
        yield url


@pytest.fixture(scope="session")
def tiny_text_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainer_client.tiny_models import build_tiny_text_model

    return Path(build_tiny_text_model(tmp_path_factory.mktemp("tiny-text"), seed=0))


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainer_client.tiny_models import build_tiny_vlm

    return Path(build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"), seed=0))


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The synthetic digit-copy files (warmup, warmup_cot, pool, stage1, stage2)."""
    from trainer_client.synthetic import write_demo_data

    return write_demo_data(tmp_path_factory.mktemp("digits"), rows=64, seed=0)


@pytest.fixture(scope="session")
def warm_model(
    tmp_path_factory: pytest.TempPathFactory, tiny_text_model: Path, demo_data: dict[str, Path]
) -> Path:
    """The tiny model after a supervised format warm-up: it answers `<answer>D</answer>`
    with some digit, mostly not yet the one shown (the GRPO tests need room to improve)."""
    from trainer_client.checkpoint import seed_everything
    from trainer_client.data import load_rows
    from trainer_client.policy import load_policy
    from trainer_client.train import supervised_warmup

    seed_everything(0)
    policy = load_policy(tiny_text_model, "cpu")
    losses = supervised_warmup(policy, load_rows(demo_data["warmup"]).rows, steps=60, lr=1e-2,
                               batch_size=8, seed=0)
    assert losses[-1] < losses[0] / 4, losses  # it did learn the layout
    return policy.save(tmp_path_factory.mktemp("warm-model"))
