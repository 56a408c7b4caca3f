"""The framework endpoints (`/openrlhf`, `/slime`) and per-item invalid results on `/score`,
with the request shapes the frameworks send (see reward_client's fixtures)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from reward_server.settings import Settings
from services.http import build_app
from tests.reward_client.framework_shapes import openrlhf_payload, slime_payload


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_app(Settings(workers=1, item_timeout_s=10))) as test_client:
        yield test_client


PROMPT = "<|im_start|>user\nHow many birds?<|im_end|>\n<|im_start|>assistant\n"


def test_openrlhf_payload_strips_the_prompt_and_special_tokens(client: TestClient) -> None:
    payload = openrlhf_payload(
        [PROMPT + "<answer>4</answer><|im_end|>", PROMPT + "<answer>5</answer>"],
        [PROMPT, PROMPT],
        [json.dumps({"answer": "4", "answer_type": "number"}), {"answer": "4",
                                                                "answer_type": "number"}],
    )
    body = client.post("/openrlhf", json=payload).json()
    assert body["rewards"] == [1.0, 0.0] and body["scores"] == [1.0, 0.0]
    assert body["extra_logs"]["format_reward"] == [1.0, 1.0]
    assert body["extra_logs"]["scored"] == [1.0, 1.0]


def test_openrlhf_plain_labels_take_the_answer_type_from_the_url(client: TestClient) -> None:
    payload = openrlhf_payload([PROMPT + "<answer>(B)</answer>"], [PROMPT], ["B"])
    assert client.post("/openrlhf?answer_type=multiple-choice",
                       json=payload).json()["rewards"] == [1.0]
    refused = client.post("/openrlhf", json=payload)
    assert refused.status_code == 422 and "answer_type" in refused.json()["message"]


def test_openrlhf_invalid_item_mode_scores_the_rest(client: TestClient) -> None:
    payload = openrlhf_payload([PROMPT + "<answer>4</answer>", PROMPT + "<answer>4</answer>"],
                               [PROMPT, PROMPT], ["4", {"answer": "4", "answer_type": "poetry"}])
    body = client.post("/openrlhf?answer_type=number&invalid=item&unscored_value=-1",
                       json=payload).json()
    assert body["rewards"] == [1.0, -1.0] and body["extra_logs"]["scored"] == [1.0, 0.0]


def test_slime_payload_gives_a_flat_reply(client: TestClient) -> None:
    reply = client.post("/slime", json=slime_payload(
        PROMPT, "<answer>4</answer><|endoftext|>", {"answer": "4", "answer_type": "number"}))
    assert reply.status_code == 200
    assert reply.json() == {"reward": 1.0, "acc_reward": 1.0, "format_reward": 1.0,
                            "status": "ok", "error": None}


def test_slime_invalid_item_mode(client: TestClient) -> None:
    reply = client.post("/slime?invalid=item", json=slime_payload(PROMPT, "x", "4")).json()
    assert reply["status"] == "invalid" and reply["reward"] == 0.0
    assert "answer_type" in reply["error"]


def test_score_invalid_item_mode_reports_each_bad_item(client: TestClient) -> None:
    good = {"id": "a", "answer_type": "number", "response": "<answer>3</answer>", "answer": "3"}
    items = [good, {"id": "b", "answer_type": "number", "answer": "3"},  # no response
             {**good, "id": "c", "answer_type": "poetry"},
             {**good, "id": "d", "options": {"colour": 1}}, {**good, "id": "e"}]
    strict = client.post("/score", json={"items": items})
    assert strict.status_code == 422
    assert strict.json()["detail"][0]["loc"] == ["body", "items", 1, "response"]
    results = client.post("/score", json={"items": items, "invalid": "item"}).json()["results"]
    assert [(r["id"], r["status"]) for r in results] == [
        ("a", "ok"), ("b", "invalid"), ("c", "invalid"), ("d", "invalid"), ("e", "ok")]
    assert results[1]["error"].startswith("items[1].response")
    assert results[2]["error"].startswith("items[2].answer_type")
    assert results[3]["error"].startswith("items[3].options.colour")
    assert results[4]["reward"] == 1.0 and results[4]["cached"] is True


def test_score_limits_name_the_item_by_its_index_in_the_request() -> None:
    settings = Settings(workers=1, item_timeout_s=10, max_items=3, max_response_chars=100)
    good = {"answer_type": "number", "response": "<answer>3</answer>", "answer": "3"}
    broken = {"answer_type": "number", "answer": "3"}  # no response
    with TestClient(build_app(settings)) as small:
        long = small.post("/score", json={"items": [broken, good, {**good, "response": "x" * 101}],
                                          "invalid": "item"})
        assert long.status_code == 413
        assert long.json()["message"].startswith("items[2].response")
        many = small.post("/score", json={"items": [broken, broken, good, good],
                                          "invalid": "item"})
        assert many.status_code == 413
        assert "4 items" in many.json()["message"]


def test_openrlhf_samples_and_labels_of_different_lengths_are_a_422_naming_labels(
    client: TestClient,
) -> None:
    payload = {"query": ["<answer>4</answer>", "<answer>5</answer>"], "labels": ["4"]}
    for invalid in ("request", "item"):
        reply = client.post(f"/openrlhf?answer_type=number&invalid={invalid}", json=payload)
        assert reply.status_code == 422
        assert reply.json()["message"].startswith("labels: query, prompts and labels")
        assert reply.json()["detail"][0]["loc"] == ["body", "labels"]
