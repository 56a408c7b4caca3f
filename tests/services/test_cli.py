"""`reward-server serve` options reach the settings; a shared engine outlives the app."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

import services.serve
from reward_server.engine import Engine
from reward_server.settings import Settings
from reward_server.types import ScoreItem
from services.cli import main
from services.http import build_app


@pytest.mark.parametrize(
    "argv,grpc_port",
    [
        ([], 50051),  # the setting's default: gRPC on beside HTTP
        (["--grpc-port", "6000"], 6000),
        (["--no-grpc"], 0),
        (["--grpc-port", "6000", "--no-grpc"], 0),
    ],
)
def test_serve_flags_set_the_grpc_port(
    argv: list[str], grpc_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.delenv("REWARD_GRPC_PORT", raising=False)
    monkeypatch.setattr(services.serve, "serve",
                        lambda settings, log_level: seen.update(settings=settings))
    main(["serve", "--port", "9000", *argv])
    assert seen["settings"].grpc_port == grpc_port
    assert seen["settings"].port == 9000


def test_the_http_app_leaves_a_shared_engine_open(fake_answer_type: str) -> None:
    settings = Settings(workers=1, item_timeout_s=5)
    with Engine(settings) as engine:
        with TestClient(build_app(settings, engine=engine)) as client:
            body = {"items": [{"answer_type": "test-fake", "response": "<answer>7</answer>",
                               "answer": "7"}]}
            assert client.post("/score", json=body).json()["results"][0]["reward"] == 1.0
        # the app has shut down; the engine (the gRPC server's too) still serves
        assert engine.health()["pool_active"] is True
        [result] = engine.score_sync([ScoreItem("test-fake", "<answer>8</answer>", "8")])
        assert result.status == "ok" and result.reward == 1.0
