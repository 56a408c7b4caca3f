"""Overruns caused by the response are `rejected` (scored as wrong); overruns caused by
load stay `timeout` (excluded); a policy gains nothing by being unverifiable."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from reward_client import is_scored
from reward_server import overrun
from reward_server.engine import Engine
from reward_server.settings import Settings
from reward_server.types import ScoreItem


def item(answer: str, reference: str = "7", answer_type: str = "test-fake") -> ScoreItem:
    return ScoreItem(answer_type=answer_type, response=f"<answer>{answer}</answer>",
                     answer=reference)


@pytest.fixture(scope="module")
def patient_engine(fake_answer_type: str) -> Iterator[Engine]:
    """An engine whose retries tolerate a loaded test machine: a process that gets a
    fifteenth of a core still reaches its CPU budget before the wall-clock limit."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(overrun, "RETRY_WALL_FACTOR", 15.0)
        with Engine(Settings(workers=2, item_timeout_s=1.0, cache_size=100)) as engine:
            yield engine


def test_costly_response_is_rejected_and_the_batch_is_fine(patient_engine: Engine) -> None:
    spin, right, wrong = patient_engine.score_sync(
        [item("spin:120"), item("7"), item("8")])
    assert spin.status == "rejected" and spin.reward == 0.0 and spin.acc_reward == 0.0
    assert spin.error and "CPU" in spin.error
    assert (right.status, right.reward) == ("ok", 1.0)
    assert (wrong.status, wrong.reward) == ("ok", 0.0)
    # the rejection is the response's: cached like a verdict, not re-run
    again = patient_engine.score_sync([item("spin:120")])[0]
    assert again.status == "rejected" and again.cached


def test_verifier_timeout_while_computing_is_rejected(patient_engine: Engine) -> None:
    busy, idle = patient_engine.score_sync([item("alarm"), item("idle-alarm")])
    assert busy.status == "rejected" and "overran twice" in (busy.error or "")
    assert idle.status == "timeout"  # it was waiting, not computing: not its fault


def test_overrun_without_computing_stays_timeout(engine: Engine) -> None:
    # sleeping stands for a worker starved of CPU: the wall clock fires before the budget
    result = engine.score_sync([item("sleep:30")])[0]
    assert result.status == "timeout" and "overloaded" in (result.error or "")
    assert not is_scored(result.to_dict())


def test_guard_refusal_is_rejected(engine: Engine) -> None:
    result = engine.score_sync([item("refuse")])[0]
    assert (result.status, result.reward) == ("rejected", 0.0)
    assert result.error == "over the verifier's size guard"


def test_async_path_retries_too(patient_engine: Engine) -> None:
    results = asyncio.run(patient_engine.score([item("spin:60"), item("7")]))
    assert [r.status for r in results] == ["rejected", "ok"]


HOSTILE_MATH = [
    "1+" * 3000 + "1",  # over max_answer_chars
    "{" * 100 + "1" + "}" * 100,  # nested deeper than max_nesting
    "9^{9^{9^{9}}}",  # a power tower
    "(10^{100})!",  # the factorial of a power
]


def test_hostile_answers_earn_what_a_wrong_answer_earns(engine: Engine) -> None:
    """A GRPO group of a policy that learned hostile answers against one of wrong answers:
    every hostile result is scored (not excluded) and earns exactly the wrong reward."""
    wrong = engine.score_sync([item(str(n), "7", "math-expressions") for n in (5, 6, 8, 9)])
    hostile = engine.score_sync([item(a, "7", "math-expressions") for a in HOSTILE_MATH])
    assert {r.status for r in wrong} == {"ok"}
    assert {r.status for r in hostile} == {"rejected"}, [(r.status, r.error) for r in hostile]
    assert all(is_scored(r.to_dict()) for r in wrong + hostile)
    assert [r.reward for r in hostile] == [wrong[0].reward] * len(HOSTILE_MATH) == [0.0] * 4
    mean = sum(r.reward for r in hostile) / len(hostile)
    assert mean == sum(r.reward for r in wrong) / len(wrong)


def test_rejected_is_in_the_http_contract() -> None:
    from services.http.schemas import ScoreResultModel

    schema = ScoreResultModel.model_json_schema()
    assert "rejected" in schema["properties"]["status"]["enum"]
