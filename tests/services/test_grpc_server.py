"""The real server process over gRPC: the same verdicts as HTTP, streams, refusals with
`BadRequest` details, deadlines, health and reflection, and a graceful SIGTERM."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from reward_client import RewardClient, RewardRequestError
from reward_client._proto.reward.v1 import reward_pb2, reward_pb2_grpc
from reward_client._values import to_value
from reward_client.grpc import field_violations, to_message
from tests.services.server_process import ServerProcess, server_process
from tests.services.test_server_process import mixed_items

SERVICE = "reward.v1.RewardService"
SVG = "<svg xmlns='http://www.w3.org/2000/svg' width='40' height='40'>" \
      "<circle cx='20' cy='20' r='12' fill='red'/></svg>"
HTML = "<html><body><h1>Prices</h1><p>Basic plan: 5 dollars a month.</p></body></html>"

# A known-answer table of real answer types (cases taken from the verifier tests), scored
# over both transports: (answer_type, response, answer, expected acc_reward, extra fields).
KNOWN_ANSWERS: list[tuple[str, str, Any, float, dict[str, Any]]] = [
    ("multiple-choice", "<answer>Answer: C</answer>", "A", 0.0, {}),
    ("multiple-choice", "<answer>**B**</answer>", "B", 1.0, {}),
    ("multiple-choice", "<answer>b) cat</answer>", "B", 1.0, {"choices": ["dog", "cat"]}),
    ("number", "<answer>1,000</answer>", "1000", 1.0, {}),
    ("number", "<answer>twelve</answer>", 12, 1.0, {}),
    ("number", "<answer>-4</answer>", "4", 0.0, {}),
    ("number", "<answer>3.0</answer>", 3.0, 1.0, {}),
    ("number", "<answer>2.5</answer>", 2.4, 1.0, {"options": {"abs_tol": 0.2}}),
    ("boolean", "<answer>I don't know</answer>", "no", 0.0, {}),
    ("boolean", "<answer>Yes.</answer>", "Yes", 1.0, {}),
    ("boolean", "<answer>true</answer>", True, 1.0, {}),
    ("ocrtext", "<answer>abcx</answer>", "  ABCD  ", 0.75, {}),
    ("ocrtext", "<answer>Paris</answer>", ["London", "paris"], 1.0, {}),
    ("bbox", "<answer>[0, 0, 10, 10]</answer>", [0, 0, 10, 10], 1.0, {}),
    ("bbox", "<answer>[100, 100, 500, 500]</answer>", [0.1, 0.1, 0.5, 0.5], 1.0, {}),
    ("any", "<answer>dark   red</answer>", "Dark Red", 1.0, {}),
    ("any", "<answer>12</answer>", 12, 1.0, {}),
    ("critic", "<answer>correct</answer>", "Correct", 0.0, {}),
    ("math-expressions", "<answer>2</answer>", r"2\pi", 0.0, {}),
    ("math-expressions", r"<answer>\pi/2</answer>", r"\frac{\pi}{2}", 1.0, {}),
    ("math-expressions", "<answer>0.5</answer>", "1/2", 1.0, {}),
    ("svg-code", f"<answer>{SVG}</answer>", SVG, 1.0, {}),
    ("html-code", f"<answer>{HTML}</answer>", HTML, 1.0, {}),
    ("number", "The answer is 5.", "5", 0.0, {}),  # no <answer>: status no_answer
]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    env = {"REWARD_WORKERS": "2", "REWARD_ITEM_TIMEOUT_S": "60"}
    with server_process(env, startup_s=90.0, grpc=True, with_fakes=True) as started:
        yield started


@pytest.fixture(scope="module")
def stub(server: ServerProcess) -> Iterator[reward_pb2_grpc.RewardServiceStub]:
    assert server.grpc_target is not None
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield reward_pb2_grpc.RewardServiceStub(channel)


def request(*items: dict[str, Any]) -> reward_pb2.ScoreRequest:
    return reward_pb2.ScoreRequest(items=[to_message(i, item) for i, item in enumerate(items)])


def fake(answer: str, reference: Any = "7", **kw: Any) -> dict[str, Any]:
    return {"answer_type": "test-fake", "response": f"<answer>{answer}</answer>",
            "answer": reference, **kw}


def without_cached(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "cached"} for r in results]


def test_known_answers_are_the_same_over_grpc_and_http(server: ServerProcess) -> None:
    items = [{"id": f"k{i}", "answer_type": t, "response": r, "answer": a, **extra}
             for i, (t, r, a, _, extra) in enumerate(KNOWN_ANSWERS)]
    over_grpc = RewardClient(f"grpc://{server.grpc_target}", timeout_s=120).score(items)
    over_http = RewardClient(server.url, timeout_s=120).score(items)
    assert without_cached(over_grpc) == without_cached(over_http)
    for result, (answer_type, response, _, expected, _) in zip(over_grpc, KNOWN_ANSWERS,
                                                               strict=True):
        expected_status = "ok" if "<answer>" in response else "no_answer"
        assert result["status"] == expected_status, (answer_type, response, result)
        assert math.isclose(result["acc_reward"], expected, abs_tol=0.05), (answer_type, result)


def test_batch_results_keep_request_order(server: ServerProcess) -> None:
    items = mixed_items(500, seed=3)
    expected = [item.pop("expect") for item in items]
    results = RewardClient(f"grpc://{server.grpc_target}", batch_size=128).score(items)
    assert [r["id"] for r in results] == [item["id"] for item in items]
    assert [r["acc_reward"] == 1.0 for r in results] == expected


def test_stream_returns_every_result_once_as_soon_as_ready(
    stub: reward_pb2_grpc.RewardServiceStub,
) -> None:
    # a slow item first, then 300 quick ones (repeats included), sent 1 to 7 per message
    items = [fake("sleep:1.5", "slow", id="slow")] + [
        fake(str(i % 9), str(i % 4), id=f"s{i}") for i in range(300)
    ]
    messages, start = [], 0
    while start < len(items):
        size = 1 + start % 7
        messages.append(reward_pb2.ScoreRequest(
            items=[to_message(start + j, item) for j, item in enumerate(items[start:start + size])]
        ))
        start += size
    results = list(stub.ScoreStream(iter(messages), timeout=60))
    assert sorted(r.index for r in results) == list(range(len(items)))  # each exactly once
    by_index = {r.index: r for r in results}
    for index, item in enumerate(items):
        assert by_index[index].id == item["id"]
        assert by_index[index].status == "ok"
        assert by_index[index].acc_reward == float(item["response"][8:-9] == item["answer"]
                                                   or index == 0)
    assert results[-1].id == "slow"  # the slow first item came back last, not first


def test_client_stream_sync_and_async_match_batch(server: ServerProcess) -> None:
    import asyncio

    client = RewardClient(f"grpc://{server.grpc_target}")
    items = mixed_items(120, seed=5)
    for item in items:
        item.pop("expect")
    batch = client.score(items)
    streamed = sorted(client.stream(iter(items)), key=lambda r: r["index"])

    async def collect() -> list[dict[str, Any]]:
        return [r async for r in client.astream(items)]

    streamed_async = sorted(asyncio.run(collect()), key=lambda r: r["index"])
    grouped = list(client.stream(iter(items), per_message=16))  # a GRPO group a message
    assert all(r["index"] // 16 == grouped[16 * (i // 16)]["index"] // 16  # together
               for i, r in enumerate(grouped))
    grouped.sort(key=lambda r: r["index"])
    for got in (streamed, streamed_async, grouped):
        assert [r.pop("index") for r in got] == list(range(len(items)))
        assert without_cached(got) == without_cached(batch)


def test_bad_items_are_invalid_argument_with_bad_request_details(
    stub: reward_pb2_grpc.RewardServiceStub,
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Score(request(fake("7"), {**fake("7"), "answer_type": "haiku"},
                           fake("7", options={"colour": 1})), timeout=10)
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = dict(field_violations(error))
    assert set(fields) == {"items[1].answer_type", "items[2].options.colour"}
    assert "multiple-choice" in fields["items[1].answer_type"]  # lists the known types

    struct_answer = to_message(0, fake("7"))
    struct_answer.answer.CopyFrom(to_value({"a": 1}))
    null_answer = to_message(1, fake("7"))
    null_answer.answer.CopyFrom(to_value(None))
    with pytest.raises(grpc.RpcError) as caught:
        stub.Score(reward_pb2.ScoreRequest(items=[struct_answer, null_answer]), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(caught.value)] == ["items[0].answer", "items[1].answer"]


def test_size_limits_are_resource_exhausted_with_a_clear_message(
    stub: reward_pb2_grpc.RewardServiceStub,
) -> None:
    huge = {**fake("7"), "response": "x" * 10_000_000}  # 10 MB, over REWARD_MAX_RESPONSE_CHARS
    with pytest.raises(grpc.RpcError) as caught:
        stub.Score(request(fake("7"), huge), timeout=30)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "items[1].response has 10000000 characters" in caught.value.details()
    assert "REWARD_MAX_RESPONSE_CHARS" in caught.value.details()
    assert [f for f, _ in field_violations(caught.value)] == ["items[1].response"]

    with pytest.raises(grpc.RpcError) as caught:
        stub.Score(request(*[fake("7")] * 4097), timeout=30)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "REWARD_MAX_ITEMS" in caught.value.details()


def test_a_bad_item_in_a_stream_ends_it_after_the_earlier_results(
    stub: reward_pb2_grpc.RewardServiceStub,
) -> None:
    items = [fake("7", id="a"), fake("8", id="b"), fake("7", id="c"),
             {**fake("7"), "answer_type": "haiku"}]
    messages = [reward_pb2.ScoreRequest(items=[to_message(i, item)])
                for i, item in enumerate(items)]
    received = []
    with pytest.raises(grpc.RpcError) as caught:
        for result in stub.ScoreStream(iter(messages), timeout=30):
            received.append(result.id)
    assert sorted(received) == ["a", "b", "c"]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(caught.value)] == ["items[3].answer_type"]


def test_client_raises_request_error_naming_the_field(server: ServerProcess) -> None:
    client = RewardClient(f"grpc://{server.grpc_target}")
    with pytest.raises(RewardRequestError, match=r"items\[1\]\.answer_type.*unknown"):
        client.score([fake("7"), {**fake("7"), "answer_type": "haiku"}])
    with pytest.raises(RewardRequestError, match=r"items\[0\]\.response: field required"):
        client.score([{"answer_type": "number", "answer": 3}])


def test_deadline_cancels_the_call_and_frees_the_workers(
    server: ServerProcess, stub: reward_pb2_grpc.RewardServiceStub
) -> None:
    # both workers get a 30 s item (the item limit is 60 s); the caller gives up after 1 s
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        stub.Score(request(fake("sleep:30", "d1"), fake("sleep:30", "d2")), timeout=1.0)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 5
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.ScoreStream(iter([request(fake("sleep:30", "d3"))]), timeout=1.0))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # the abandoned items do not hold the workers: new work is served well before 30 s
    started = time.monotonic()
    response = stub.Score(request(fake("7", id="after"), fake("sleep:0.1", "x")), timeout=20)
    assert [r.status for r in response.results] == ["ok", "ok"]
    assert time.monotonic() - started < 20
    assert httpx.get(server.url + "/health").json()["inflight"] == 0


def test_health_and_reflection_answer(server: ServerProcess) -> None:
    assert server.grpc_target is not None
    with grpc.insecure_channel(server.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        database = ProtoReflectionDescriptorDatabase(channel)
        assert {SERVICE, "grpc.health.v1.Health"} <= set(database.get_services())
        described = descriptor_pool.DescriptorPool(database).FindServiceByName(SERVICE)
        assert [m.name for m in described.methods] == ["Score", "ScoreStream", "ListAnswerTypes"]
    assert RewardClient(f"grpc://{server.grpc_target}").health() == {"status": "ok"}


def test_answer_types_match_http(
    server: ServerProcess, stub: reward_pb2_grpc.RewardServiceStub
) -> None:
    over_grpc = stub.ListAnswerTypes(reward_pb2.ListAnswerTypesRequest(), timeout=10)
    over_http = httpx.get(server.url + "/answer-types").json()["answer_types"]
    assert [t.name for t in over_grpc.answer_types] == [row["name"] for row in over_http]
    number = next(t for t in over_grpc.answer_types if t.name == "number")
    http_number = next(row for row in over_http if row["name"] == "number")
    assert number.expects == http_number["expects"]
    assert set(number.options) == set(http_number["options"])
    assert number.options["rel_tol"].help == http_number["options"]["rel_tol"]["help"]


def test_sigterm_finishes_in_flight_calls_on_both_transports() -> None:
    with server_process({"REWARD_WORKERS": "1"}, grpc=True, with_fakes=True) as server:
        assert server.grpc_target is not None
        outcomes: dict[str, Any] = {}

        def over_grpc() -> None:
            with grpc.insecure_channel(server.grpc_target or "") as channel:
                stub = reward_pb2_grpc.RewardServiceStub(channel)
                outcomes["grpc"] = stub.Score(request(fake("sleep:2", "g")), timeout=30)

        def over_http() -> None:
            outcomes["http"] = httpx.post(server.url + "/score", timeout=30,
                                          json={"items": [fake("sleep:2", "h")]})

        calls = [threading.Thread(target=over_grpc), threading.Thread(target=over_http)]
        for call in calls:
            call.start()
        time.sleep(0.8)  # both calls are in flight
        server.process.send_signal(signal.SIGTERM)
        for call in calls:
            call.join(timeout=30)
        assert server.process.wait(timeout=30) == 0
    assert outcomes["grpc"].results[0].status == "ok"
    assert outcomes["http"].status_code == 200
    assert outcomes["http"].json()["results"][0]["status"] == "ok"
