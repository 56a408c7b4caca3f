"""Hostile requests over HTTP: one error shape, bounded input, never a 500.

Every bad request is a 4xx with `message` (and, for a 422, `detail[].loc`); text that a
result echoes (an id, an extracted answer) never makes the response unencodable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from reward_server.settings import Settings
from services.http import build_app

BODY_LIMIT = 300_000


@pytest.fixture(scope="module")
def client(fake_answer_type: str) -> Iterator[TestClient]:
    settings = Settings(workers=1, item_timeout_s=2.0, max_items=50, max_response_chars=5000,
                        max_body_bytes=BODY_LIMIT, max_id_chars=256)
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def fake(response: str, answer: object = "7", **kw: object) -> dict[str, object]:
    return {"answer_type": "test-fake", "response": response, "answer": answer, **kw}


def post_json_text(client: TestClient, text: str | bytes) -> tuple[int, dict[str, object]]:
    """POST a body as given (json.dumps escapes lone surrogates, as Python clients send)."""
    data = text.encode() if isinstance(text, str) else text
    response = client.post("/score", content=data, headers={"content-type": "application/json"})
    return response.status_code, response.json()


def assert_one_error_shape(status: int, payload: dict[str, object], code: int = 422) -> None:
    assert status == code, payload
    assert isinstance(payload["message"], str) and payload["message"]
    if code == 422:
        detail = payload["detail"]
        assert isinstance(detail, list) and detail
        assert all(isinstance(d["loc"], list) and d["loc"][0] == "body" for d in detail)


# -- lone surrogates: echoed text is made valid, never a 500 -------------------------------

@pytest.mark.parametrize(
    "item",
    [
        fake("<answer>7\ud800</answer>"),  # in the extracted answer
        fake("<answer>7</answer>", id="id-\udfff"),  # in the id
        fake("<answer>raise\ud800</answer>"),  # in a verifier's error message
    ],
)
def test_lone_surrogates_in_echoed_text_are_replaced(client: TestClient, item: dict) -> None:
    body = {"items": [item, fake("<answer>7</answer>")]}
    status, payload = post_json_text(client, json.dumps(body))
    assert status == 200, payload
    first, second = payload["results"]
    echoed = json.dumps(first, ensure_ascii=False)
    assert "\ufffd" in echoed and "\\ud8" not in echoed and "\\udf" not in echoed
    assert second["status"] == "ok" and second["reward"] == 1.0


def test_lone_surrogate_in_an_option_name_is_a_clean_422(client: TestClient) -> None:
    status, payload = post_json_text(
        client, json.dumps({"items": [fake("<answer>7</answer>", options={"\ud800x": 1})]})
    )
    assert_one_error_shape(status, payload)
    assert payload["detail"][0]["loc"][:4] == ["body", "items", 0, "options"]


# -- options: finite and in range, else a 422 naming the option -------------------------

@pytest.mark.parametrize(
    "options,name",
    [
        ({"format_weight": math.nan}, "format_weight"),
        ({"format_weight": math.inf}, "format_weight"),
        ({"bonus": -math.inf}, "bonus"),
        ({"bonus": "nan"}, "bonus"),  # a string pydantic would read as NaN
        ({"bonus": 2.0}, "bonus"),  # out of its declared range
    ],
)
def test_non_finite_or_out_of_range_option_is_422(
    client: TestClient, options: dict, name: str
) -> None:
    status, payload = post_json_text(
        client, json.dumps({"items": [fake("<answer>7</answer>", options=options)]})
    )
    assert_one_error_shape(status, payload)
    assert payload["detail"][0]["loc"] == ["body", "items", 0, "options", name]
    assert name in payload["message"]


def test_reward_is_always_a_finite_number(client: TestClient) -> None:
    items = [fake("<answer>7</answer>", options={"format_weight": 10.0}),
             fake("<answer>nan-score</answer>"), fake("<answer>inf-component</answer>")]
    status, payload = post_json_text(client, json.dumps({"items": items}))
    assert status == 200
    rewards = [r["reward"] for r in payload["results"]]
    assert all(isinstance(r, float) and math.isfinite(r) for r in rewards)
    assert rewards[0] == 11.0
    assert [r["status"] for r in payload["results"][1:]] == ["error", "error"]


# -- one error shape for every unparseable body -----------------------------------------

@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # nested beyond any parser's recursion
        b'{"items": [{"answer_type": "test-fake", "response": "\xff\xfe", "answer": "7"}]}',
        ('{"items": [{"id": ' + "9" * 5000 + ', "answer_type": "test-fake", '
         '"response": "x", "answer": "7"}]}').encode(),  # an integer too long to read
        b'{"items": [',  # truncated
        b"",  # empty
        b"\x00\x01\x02",
    ],
    ids=["nested", "not-utf8", "5000-digit-id", "truncated", "empty", "binary"],
)
def test_unparseable_body_is_422_with_message_and_loc(client: TestClient, body: bytes) -> None:
    status, payload = post_json_text(client, body)
    assert_one_error_shape(status, payload)


def test_deep_nesting_under_the_body_limit_is_422(client: TestClient) -> None:
    depth = BODY_LIMIT // 2 - 10
    status, payload = post_json_text(client, b"[" * depth + b"]" * depth)
    assert_one_error_shape(status, payload)


# -- bounded id ---------------------------------------------------------------------------

def test_id_longer_than_the_limit_is_422(client: TestClient) -> None:
    status, payload = post_json_text(
        client, json.dumps({"items": [fake("<answer>7</answer>", id="x" * 257)]})
    )
    assert_one_error_shape(status, payload)
    assert payload["detail"][0]["loc"] == ["body", "items", 0, "id"]
    assert "REWARD_MAX_ID_CHARS" in payload["message"]
    status, payload = post_json_text(
        client, json.dumps({"items": [fake("<answer>7</answer>", id=int("9" * 300))]})
    )
    assert_one_error_shape(status, payload)
    body = {"items": [fake("<answer>7</answer>", id="x" * 256)]}
    ok, _ = post_json_text(client, json.dumps(body))
    assert ok == 200


# -- body size limit, before parsing ------------------------------------------------------

def test_body_over_the_limit_is_413_by_content_length(client: TestClient) -> None:
    body = json.dumps({"items": [fake("<answer>7</answer>" + " " * BODY_LIMIT)]})
    assert len(body) > BODY_LIMIT
    status, payload = post_json_text(client, body)
    assert_one_error_shape(status, payload, code=413)
    assert "REWARD_MAX_BODY_BYTES" in payload["message"]


def test_chunked_body_over_the_limit_is_413(client: TestClient) -> None:
    chunk = b" " * 4096

    def chunks() -> Iterator[bytes]:
        yield b'{"items": []'
        for _ in range(250):  # 1 MB of whitespace, no Content-Length
            yield chunk
        yield b"}"

    response = client.post("/score", content=chunks(), headers={"content-type":
                                                                   "application/json"})
    assert_one_error_shape(response.status_code, response.json(), code=413)


def test_unknown_route_has_the_same_error_shape(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404 and isinstance(response.json()["message"], str)


def test_a_hundred_thousand_malformed_items_are_refused_by_count_first(
    client: TestClient,
) -> None:
    body = json.dumps({"items": [0] * 90_000})  # 270 KB: under the body limit
    assert len(body) < BODY_LIMIT
    status, payload = post_json_text(client, body)
    assert_one_error_shape(status, payload, code=413)
    assert "REWARD_MAX_ITEMS" in payload["message"]


def test_a_422_lists_at_most_a_hundred_fields_and_counts_the_rest(client: TestClient) -> None:
    status, payload = post_json_text(client, json.dumps({"items": [{}] * 50}))
    assert_one_error_shape(status, payload)
    assert len(payload["detail"]) == 100
    assert "(and 149 more)" in payload["message"]
