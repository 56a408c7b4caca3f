"""Which transport a URL picks, what the HTTP-only client imports, and the gRPC item and
result mapping (no server needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reward_client import RewardClient, RewardRequestError
from reward_client._values import from_value
from reward_client.client import pick_transport


@pytest.mark.parametrize(
    "url,transport,expected",
    [
        ("http://reward:8000/", "auto", ("http", "http://reward:8000")),
        ("https://reward.example", "auto", ("http", "https://reward.example")),
        ("grpc://reward:50051", "auto", ("grpc", "reward:50051")),
        ("reward:50051", "grpc", ("grpc", "reward:50051")),
        ("http://reward:50051", "grpc", ("grpc", "reward:50051")),
    ],
)
def test_the_url_or_the_argument_picks_the_transport(
    url: str, transport: str, expected: tuple[str, str]
) -> None:
    assert pick_transport(url, transport) == expected  # type: ignore[arg-type]


def test_contradictions_are_refused() -> None:
    with pytest.raises(ValueError, match="gRPC URL"):
        RewardClient("grpc://reward:50051", transport="http")
    with pytest.raises(ValueError, match="transport must be"):
        RewardClient("http://reward:8000", transport="carrier-pigeon")  # type: ignore[arg-type]


def test_the_http_client_imports_neither_grpc_nor_torch_nor_the_verifiers() -> None:
    code = (
        "import sys\n"
        "from reward_client import RewardClient\n"
        "RewardClient('http://127.0.0.1:1')\n"
        "heavy = [m for m in ('grpc', 'google.protobuf', 'torch', 'reward_server')\n"
        "         if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_items_map_to_messages_and_results_back() -> None:
    from reward_client._proto.reward.v1 import reward_pb2
    from reward_client.grpc import to_dict, to_message

    message = to_message(0, {"id": 5, "answer_type": "bbox", "response": "r",
                             "answer": [0, 0, 1, 1], "options": {"iou_threshold": 0.5},
                             "choices": None, "problem_type": None})
    assert message.id == "5" and not message.HasField("problem_type")
    assert from_value(message.answer) == [0, 0, 1, 1]
    assert message.options.fields["iou_threshold"].number_value == 0.5
    result = reward_pb2.ScoreResult(reward=1.0, acc_reward=1.0, status="ok", index=3)
    assert to_dict(result) == {"id": None, "reward": 1.0, "acc_reward": 1.0,
                               "format_reward": 0.0, "components": {}, "extracted": None,
                               "status": "ok", "error": None, "cached": False}
    assert to_dict(result, with_index=True)["index"] == 3


def nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "item,match",
    [
        ({"answer_type": "number", "response": "r"}, r"items\[2\]\.answer: field required"),
        ({"answer_type": "number", "response": "r", "answer": 1, "colour": 1},
         r"items\[2\]: unknown field\(s\) colour"),
        ({"answer_type": "number", "response": ["r"], "answer": 1}, r"items\[2\]\.response"),
        ({"answer_type": "number", "response": "r", "answer": nested(150)},
         r"items\[2\]\.answer"),  # deeper than protobuf parses
    ],
)
def test_bad_item_dicts_are_refused_before_sending(item: dict[str, object], match: str) -> None:
    from reward_client.grpc import to_message

    with pytest.raises(RewardRequestError, match=match):
        to_message(2, item)
