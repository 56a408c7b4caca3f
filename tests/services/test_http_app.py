"""The HTTP contract: thin routes, 4xx that name the item and field, never a 500."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from reward_server import registry
from reward_server.settings import Settings
from services.http import build_app


@pytest.fixture(scope="module")
def client(fake_answer_type: str) -> Iterator[TestClient]:
    settings = Settings(workers=2, item_timeout_s=1.5, max_items=50, max_response_chars=1000)
    with TestClient(build_app(settings)) as test_client:
        yield test_client


def fake(response: str, answer: object = "7", **kw: object) -> dict[str, object]:
    return {"answer_type": "test-fake", "response": response, "answer": answer, **kw}


def test_score_returns_results_in_order_with_the_full_shape(client: TestClient) -> None:
    body = {"items": [fake("<answer>7</answer>", id="x"), fake("nothing"),
                      fake("<answer>sleep:30</answer>", id=5)]}
    response = client.post("/score", json=body)
    assert response.status_code == 200
    ok, missing, slow = response.json()["results"]
    assert ok == {"id": "x", "reward": 1.0, "acc_reward": 1.0, "format_reward": 1.0,
                  "components": ok["components"], "extracted": "7", "status": "ok",
                  "error": None, "cached": False}
    assert missing["status"] == "no_answer" and missing["reward"] == 0.0
    assert slow["status"] == "timeout" and slow["id"] == "5"


def test_empty_batch_is_fine(client: TestClient) -> None:
    response = client.post("/score", json={"items": []})
    assert response.status_code == 200 and response.json() == {"results": []}


def test_missing_field_names_item_index_and_field(client: TestClient) -> None:
    body = {"items": [fake("<answer>7</answer>"), {"answer_type": "test-fake", "answer": "7"}]}
    response = client.post("/score", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert payload["detail"][0]["loc"] == ["body", "items", 1, "response"]
    assert payload["detail"][0]["type"] == "missing"
    assert payload["message"] == "items[1].response: Field required"


def test_unknown_field_is_422_naming_it(client: TestClient) -> None:
    response = client.post("/score", json={"items": [fake("<answer>7</answer>", colour="red")]})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "items", 0, "colour"]
    assert (error["type"], error["msg"]) == ("extra_forbidden", "Extra inputs are not permitted")


def test_wrong_type_is_422(client: TestClient) -> None:
    response = client.post("/score", json={"items": [fake(["not", "a", "string"])]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:4] == ["body", "items", 0, "response"]


def test_unknown_answer_type_lists_the_known_ones(client: TestClient) -> None:
    body = {"items": [fake("<answer>7</answer>"), {**fake("x"), "answer_type": "poetry"}]}
    response = client.post("/score", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert payload["detail"][0]["loc"] == ["body", "items", 1, "answer_type"]
    for name in registry.names():
        assert name in payload["message"]


def test_unknown_option_is_422_with_its_name(client: TestClient) -> None:
    body = {"items": [fake("<answer>7</answer>", options={"bonus": 0.1}),
                      fake("<answer>7</answer>", options={"colour": 1})]}
    response = client.post("/score", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "items", 1, "options", "colour"]


def test_bad_option_value_is_422(client: TestClient) -> None:
    response = client.post("/score", json={"items": [fake("x", options={"bonus": "lots"})]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:5] == ["body", "items", 0, "options", "bonus"]


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post("/score", content=b'{"items": [', headers={"content-type":
                                                                      "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


def test_too_many_items_is_413(client: TestClient) -> None:
    response = client.post("/score", json={"items": [fake("x")] * 51})
    assert response.status_code == 413
    assert "REWARD_MAX_ITEMS" in response.json()["message"]


def test_too_long_response_is_413_naming_the_item(client: TestClient) -> None:
    response = client.post("/score", json={"items": [fake("x"), fake("y" * 1001)]})
    assert response.status_code == 413
    assert "items[1].response" in response.json()["message"]


def test_health_reports_the_pool(client: TestClient) -> None:
    payload = client.get("/health").json()
    assert payload["status"] == "ok" and payload["workers"] == 2 and payload["pool_active"]


def test_a_slow_health_probe_does_not_stall_other_requests(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/health` gathers the engine's state (the first call probes the code sandbox) off
    the event loop: a request that comes meanwhile is answered first."""
    engine = client.app.state.engine  # type: ignore[attr-defined]
    sandbox = engine._code_sandbox()
    answered = threading.Event()

    def slow_probe() -> dict[str, object]:
        # until the other request is answered: for good if it cannot be (the loop is held)
        answered.wait(timeout=10)
        return sandbox

    monkeypatch.setattr(engine, "_code_sandbox", slow_probe)
    done: list[str] = []

    async def get(path: str, after_s: float) -> None:
        await asyncio.sleep(after_s)
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            assert (await http.get(path)).status_code == 200
        done.append(path)
        answered.set()

    async def both() -> None:
        await asyncio.gather(get("/health", 0.0), get("/answer-types", 0.2))

    asyncio.run(both())
    assert done == ["/answer-types", "/health"]


def test_answer_types_lists_the_registry_with_option_defaults(client: TestClient) -> None:
    rows = {row["name"]: row for row in client.get("/answer-types").json()["answer_types"]}
    assert set(rows) == set(registry.names())
    assert rows["test-fake"]["options"]["bonus"]["default"] == 0.0
    assert rows["test-fake"]["options"]["strict_tags"]["default"] is True


def test_openapi_enum_is_the_registry(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    item = schema["components"]["schemas"]["ScoreItem"]
    assert set(item["properties"]["answer_type"]["enum"]) == set(registry.names())
    body = schema["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]
    request = schema["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    item_refs = [arm.get("$ref", "") for arm in request["properties"]["items"]["items"]["anyOf"]]
    assert any(ref.endswith("/ScoreItem") for ref in item_refs)
    assert "ScoreResultModel" in schema["components"]["schemas"]
    assert client.get("/docs").status_code == 200


def test_metrics_count_items_and_say_the_cache_is_local(client: TestClient) -> None:
    client.post("/score", json={"items": [fake("<answer>metric</answer>", "metric")] * 3})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    count = next(line for line in text.splitlines()
                 if line.startswith('reward_items_total{answer_type="test-fake",status="ok"}'))
    assert float(count.split()[-1]) >= 3
    assert 'reward_cache_state{reward_cache_state="local"} 1.0' in text
    assert "reward_redis_up" not in text  # no Redis configured
    assert 'reward_request_seconds_count{transport="http"}' in text
    assert client.get("/health").json()["cache"] == "local"


def test_number_ids_come_back_as_the_text_of_the_integer(client: TestClient) -> None:
    items = [fake("<answer>7</answer>", id=value) for value in (12, 2.0, True)]
    response = client.post("/score", json={"items": items})
    assert [r["id"] for r in response.json()["results"]] == ["12", "2", "1"]


@pytest.mark.parametrize(("item", "loc", "kind"), [
    (5, ["body", "items", 0, "ScoreItem"], "model_type"),
    (fake("<answer>7</answer>", choices="AB"), ["body", "items", 0, "choices"], "list_type"),
])
def test_wrong_shapes_keep_the_error_types_of_the_contract(
    client: TestClient, item: object, loc: list[object], kind: str
) -> None:
    response = client.post("/score", json={"items": [item]})
    assert response.status_code == 422
    assert {"loc": loc, "type": kind} in [
        {"loc": e["loc"], "type": e["type"]} for e in response.json()["detail"]]


# Requests that `POST /score`'s short stack (`RewardApp`) must answer exactly as the full
# one does: (method, path, body, extra headers).
SHORT_STACK_CASES = [
    ("POST", "/score", b'{"items": [{"answer_type": "number", "response": '
     b'"<answer>7</answer>", "answer": 7, "id": 3}, {"answer_type": "bbox", "response": '
     b'"<answer>[0, 0, 1, 1]</answer>", "answer": [0, 0, 1, 2]}]}', {}),
    ("POST", "/score", b'{"items": [', {}),
    ("POST", "/score", b'{"items": [{"answer_type": "test-fake", "answer": "7"}]}', {}),
    ("POST", "/score", b'{"items": [{"answer_type": "nope", "response": "x", "answer": 1}],'
     b' "invalid": "item"}', {}),
    ("POST", "/score", b'{"items": [' + b",".join([b'{"answer_type": "test-fake", '
     b'"response": "x", "answer": "7"}'] * 4) + b"]}", {}),
    ("POST", "/score", b"{" + b" " * 3000 + b"}", {}),
    ("POST", "/score", b'{"items": []}', {"content-length": "999999"}),
    ("GET", "/score", b"", {}),
    ("POST", "/score/", b'{"items": []}', {}),
]


@pytest.mark.parametrize("case", range(len(SHORT_STACK_CASES)))
def test_score_short_stack_answers_as_the_full_stack(fake_answer_type: str, case: int) -> None:
    """Status, body and content type are the same through both stacks, errors included
    (malformed body, wrong fields, per-item errors, too many items, a body over the limit
    as it streams in and as declared, another method, another path)."""
    method, path, body, headers = SHORT_STACK_CASES[case]
    settings = Settings(workers=1, max_items=3, max_body_bytes=2048)
    answers = []
    for fast in (True, False):
        app = build_app(settings)
        app.fast_score = fast  # type: ignore[attr-defined]
        with TestClient(app, follow_redirects=False) as test_client:
            response = test_client.request(method, path, content=body,
                                           headers={"content-type": "application/json",
                                                    **headers})
            took_short = app._score_stack is not None  # type: ignore[attr-defined]
        answers.append((response.status_code, response.headers.get("content-type"),
                        response.content))
        assert took_short == (fast and method == "POST" and path == "/score")
    assert answers[0] == answers[1]


def test_score_short_stack_keeps_the_server_error_answer(fake_answer_type: str) -> None:
    """An unexpected failure is the same 500 through both stacks."""
    answers = []
    for fast in (True, False):
        app = build_app(Settings(workers=1))
        app.fast_score = fast  # type: ignore[attr-defined]
        with TestClient(app, raise_server_exceptions=False) as test_client:

            async def broken(items: object) -> None:
                raise RuntimeError("engine broke")

            app.state.engine.score = broken
            response = test_client.post("/score", json={"items": [fake("<answer>7</answer>")]})
        answers.append((response.status_code, response.content))
    assert answers[0] == answers[1] and answers[0][0] == 500
