"""`general-code` over HTTP: the README example, the options in /answer-types, /health."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from reward_server.settings import Settings
from services.http import build_app

ADD = json.dumps({"inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"]})


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_app(Settings(workers=2, cache_size=0))) as test_client:
        yield test_client


def test_score_runs_the_program(client: TestClient) -> None:
    program = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    items = [
        {"answer_type": "general-code", "response": f"<answer>{program}</answer>", "answer": ADD},
        {"answer_type": "general-code", "response": "<answer>print(3)</answer>", "answer": [ADD]},
        {"answer_type": "general-code", "response": "<answer>while True: pass</answer>",
         "answer": ADD, "options": {"time_limit_s": 0.5}},
    ]
    response = client.post("/score", json={"items": items})
    assert response.status_code == 200
    right, wrong, spinning = response.json()["results"]
    assert right["reward"] == 1.0
    assert right["components"] == {"tests_passed": 2.0, "tests_total": 2.0}
    assert (wrong["status"], wrong["reward"]) == ("ok", 0.0)
    assert wrong["components"]["tests_passed"] == 1.0
    assert (spinning["status"], spinning["reward"]) == ("ok", 0.0)


def test_a_bad_option_is_a_422_naming_it(client: TestClient) -> None:
    item = {"answer_type": "general-code", "response": "<answer>x</answer>", "answer": ADD,
            "options": {"time_limit_s": -1}}
    response = client.post("/score", json={"items": [item]})
    assert response.status_code == 422
    assert "time_limit_s" in response.text


def test_answer_types_and_health_show_the_code_sandbox(client: TestClient) -> None:
    rows = {row["name"]: row for row in client.get("/answer-types").json()["answer_types"]}
    options = rows["general-code"]["options"]
    assert {"time_limit_s", "partial_credit", "stop_at_first_failure", "float_tolerance"} <= set(
        options
    )
    assert options["time_limit_s"]["help"]
    health = client.get("/health").json()
    assert health["code_sandbox"]["available"] is True
