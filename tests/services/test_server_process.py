"""The real server process (uvicorn on a free port) scores over HTTP."""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest

from tests.services.server_process import running_server


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server({"REWARD_WORKERS": "2"}) as url:
        yield url


def mixed_items(count: int, seed: int = 0) -> list[dict[str, object]]:
    """Items of every simple answer type, right and wrong, in random order."""
    rng = random.Random(seed)
    makers = [
        lambda i: ("multiple-choice", f"<answer>{'ABCD'[i % 4]}</answer>", "B", i % 4 == 1),
        lambda i: ("number", f"<answer>{i % 7}</answer>", 3, i % 7 == 3),
        lambda i: ("boolean", f"<answer>{'yes' if i % 2 else 'no'}</answer>", "yes", i % 2 == 1),
        lambda i: ("any", f"<answer>{'Paris' if i % 3 else 'Rome'}</answer>", "paris", i % 3 != 0),
        lambda i: ("ocrtext", f"<answer>{'hello world' if i % 5 else 'xyz'}</answer>",
                   ["Hello World"], i % 5 != 0),
    ]
    items = []
    for i in range(count):
        answer_type, response, answer, correct = rng.choice(makers)(i)
        items.append({"id": f"item-{i}", "answer_type": answer_type, "response": response,
                      "answer": answer, "expect": correct})
    return items


def test_health_and_docs(server: str) -> None:
    assert httpx.get(server + "/health").json()["pool_active"] is True
    assert httpx.get(server + "/docs").status_code == 200
    names = {row["name"] for row in httpx.get(server + "/answer-types").json()["answer_types"]}
    assert {"multiple-choice", "number", "boolean", "ocrtext", "bbox", "any", "critic"} <= names


def test_thousand_mixed_items_come_back_in_order(server: str) -> None:
    items = mixed_items(1000)
    expected = [item.pop("expect") for item in items]
    response = httpx.post(server + "/score", json={"items": items}, timeout=120)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == [item["id"] for item in items]
    assert all(r["status"] == "ok" for r in results)
    assert [r["acc_reward"] == 1.0 for r in results] == expected
    assert sum(r["cached"] for r in results) > 900  # few distinct answers: verified once each


def test_recipe_row_answer_only_and_bad_request(server: str) -> None:
    row = {"id": "r1", "answer_type": "multiple-choice", "problem_type": "stem",
           "prompt_type": "normal", "response": "<answer>(C)</answer>", "answer": "C"}
    result = httpx.post(server + "/score", json={"items": [row]}).json()["results"][0]
    assert (result["reward"], result["format_reward"], result["extracted"]) == (1.0, 1.0, "C")
    bad = httpx.post(server + "/score", json={"items": [{**row, "answer_type": "haiku"}]})
    assert bad.status_code == 422 and "multiple-choice" in bad.json()["message"]
