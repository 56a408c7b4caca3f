"""The `/score` client: batching, order, retries with backoff, refusals, unscored items."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from reward_client import (
    RewardClient,
    RewardRequestError,
    RewardServerError,
    is_scored,
)
from tests.reward_client.fake_http import Drop, Handler, Reply, Seen, Stall, fake_server


def result_for(item: dict[str, Any], status: str = "ok") -> dict[str, Any]:
    reward = 1.0 if item["response"] == f"<answer>{item['answer']}</answer>" else 0.0
    return {"id": item["id"], "reward": reward, "acc_reward": reward, "format_reward": 1.0,
            "components": {}, "extracted": None, "status": status,
            "error": None if status == "ok" else "boom", "cached": False}


def items(n: int) -> list[dict[str, Any]]:
    return [{"id": str(i), "answer_type": "number", "response": f"<answer>{i % 3}</answer>",
             "answer": "1"} for i in range(n)]


@pytest.fixture
def client_with() -> Iterator[Callable[..., RewardClient]]:
    """handler, client options -> a client of a `fake_server` serving that handler."""
    with ExitStack() as servers:

        def make(handler: Handler, **kwargs: Any) -> RewardClient:
            kwargs.setdefault("backoff_s", 0.001)
            kwargs.setdefault("max_backoff_s", 0.002)
            return RewardClient(servers.enter_context(fake_server(handler)), **kwargs)

        yield make


Client = Callable[..., RewardClient]


def test_items_are_batched_and_results_keep_request_order(client_with: Client) -> None:
    sizes: list[int] = []

    def handler(request: Seen) -> Reply | Stall:
        assert request.path == "/score"
        body = request.json()
        sizes.append(len(body["items"]))
        return Reply(200, {"results": [result_for(i) for i in body["items"]]})

    results = client_with(handler, batch_size=4, max_concurrency=2).score(items(10))
    assert sorted(sizes) == [2, 4, 4]
    assert [r["id"] for r in results] == [str(i) for i in range(10)]
    assert [r["reward"] for r in results] == [1.0 if i % 3 == 1 else 0.0 for i in range(10)]


def test_server_errors_are_retried_with_backoff(client_with: Client) -> None:
    calls = {"n": 0}

    def handler(request: Seen) -> Reply | Stall:
        calls["n"] += 1
        if calls["n"] == 1:
            return Reply(503, text="warming up")
        if calls["n"] == 2:
            raise Drop
        body = request.json()
        return Reply(200, {"results": [result_for(i) for i in body["items"]]})

    results = client_with(handler, retries=3).score(items(2))
    assert calls["n"] == 3 and len(results) == 2


def test_persistent_failure_raises_after_the_retries(client_with: Client) -> None:
    calls = {"n": 0}

    def handler(request: Seen) -> Reply | Stall:
        calls["n"] += 1
        return Stall(5.0)

    with pytest.raises(RewardServerError, match="after 3 attempts"):
        client_with(handler, retries=2, timeout_s=0.2).score(items(1))
    assert calls["n"] == 3


def test_a_refused_request_is_not_retried(client_with: Client) -> None:
    calls = {"n": 0}

    def handler(request: Seen) -> Reply | Stall:
        calls["n"] += 1
        return Reply(422, {"detail": "items[0].answer_type: unknown"})

    with pytest.raises(RewardRequestError, match="HTTP 422.*unknown"):
        client_with(handler, retries=5).score(items(1))
    assert calls["n"] == 1


def test_wrong_result_count_is_an_error(client_with: Client) -> None:
    def handler(request: Seen) -> Reply | Stall:
        return Reply(200, {"results": []})

    with pytest.raises(RewardServerError, match="0 results for 2 items"):
        client_with(handler).score(items(2))


def test_timeout_and_error_items_are_flagged_and_logged(
    client_with: Client, caplog: pytest.LogCaptureFixture
) -> None:
    statuses = ["ok", "timeout", "no_answer", "error"]

    def handler(request: Seen) -> Reply | Stall:
        body = request.json()
        pairs = zip(body["items"], statuses, strict=True)
        return Reply(200, {"results": [result_for(i, s) for i, s in pairs]})

    with caplog.at_level(logging.WARNING):
        results = client_with(handler).score(items(4))
    assert [is_scored(r) for r in results] == [True, False, True, False]
    assert "2 of 4 items not scored (error 1, timeout 1)" in caplog.text


def test_empty_list_sends_nothing(client_with: Client) -> None:
    def handler(request: Seen) -> Reply | Stall:
        raise AssertionError("no request expected")

    assert client_with(handler).score([]) == []


def test_answer_types_reads_the_registry_listing(client_with: Client) -> None:
    def handler(request: Seen) -> Reply | Stall:
        assert request.path == "/answer-types"
        return Reply(200, [{"name": "number"}, {"name": "bbox"}])

    assert client_with(handler).answer_types() == ["bbox", "number"]


def test_an_unreachable_server_is_named_in_the_error(client_with: Client) -> None:
    def handler(request: Seen) -> Reply | Stall:
        raise Drop

    client = client_with(handler, retries=1)
    with pytest.raises(RewardServerError,
                       match=f"GET {client.base_url}/answer-types failed.*running"):
        client.answer_types()


@pytest.mark.parametrize(("text", "answer"), [
    ("<answer>caf\u00e9</answer>", "caf\u00e9"),  # orjson writes it
    ("<answer>\ud800 half a pair</answer>", 2**70),  # orjson refuses both: the stdlib writes them
])
def test_every_item_the_stdlib_encodes_is_sent_as_json(
    client_with: Client, text: str, answer: Any
) -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: Seen) -> Reply | Stall:
        assert request.headers["content-type"] == "application/json"
        body = request.json()
        sent.extend(body["items"])
        return Reply(200, {"results": [result_for(i) for i in body["items"]]})

    item = {"id": "0", "answer_type": "number", "response": text, "answer": answer}
    [result] = client_with(handler).score([item])
    assert sent == [item] and result["id"] == "0"


@pytest.mark.parametrize("field", ["answer", "options"])
def test_a_number_json_cannot_carry_is_refused_before_sending(
    client_with: Client, field: str
) -> None:
    sent: list[Seen] = []

    def handler(request: Seen) -> Reply | Stall:
        sent.append(request)
        return Reply(200, {"results": []})

    item = {"id": "0", "answer_type": "number", "response": "<answer>1</answer>",
            "answer": [1.0, float("nan")] if field == "answer" else 1.0,
            "options": {"rel_tol": float("inf")} if field == "options" else {}}
    with pytest.raises(ValueError, match="not a JSON number"):
        client_with(handler).score([item])
    assert sent == []  # not written as null (for an option: its default)


def test_the_environment_proxy_carries_requests_unless_no_proxy_names_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []

    def proxy(request: Seen) -> Reply | Stall:
        seen.append(request.headers["host"])
        return Reply(200, {"results": [result_for(i) for i in request.json()["items"]]})

    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with fake_server(proxy) as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        client = RewardClient("http://reward.invalid:8000", retries=0)
        assert len(client.score(items(2))) == 2
        assert seen == ["reward.invalid:8000"]
        monkeypatch.setenv("NO_PROXY", "reward.invalid")
        with pytest.raises(RewardServerError):  # straight to a host that does not exist
            client.score(items(1))
    assert len(seen) == 1
