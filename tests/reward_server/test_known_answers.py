"""Every known-answer row, scored in process by the engine (the server's own code path).

The same rows are what `reward-server validate` sends to a deployment. A row without
`xfail` must agree; a row with `xfail` must still disagree (when a fix makes it agree,
drop the mark so the deployed suite counts it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from reward_server import known_answers, registry
from reward_server.engine import Engine
from reward_server.known_answers import KnownAnswer, RowError
from reward_server.settings import Settings
from reward_server.types import ScoreResult
from tests.conftest import FAKE

ROWS = known_answers.load()


@pytest.fixture(scope="module")
def results() -> Iterator[dict[str, ScoreResult]]:
    # A generous item limit: this machine is shared, and a timeout here is no verdict.
    items = [row.score_item() for row in ROWS]
    with Engine(Settings(workers=2, item_timeout_s=60.0, cache_size=0)) as engine:
        scored = {result.id: result for result in engine.score_sync(items)}
        # A timeout is no verdict (sympy's own limit fires on a loaded machine): once more,
        # alone, as `reward-server validate` does.
        for item in items:
            if scored[item.id].status == "timeout":
                scored[item.id] = engine.score_sync([item])[0]
    yield {key: result for key, result in scored.items() if key is not None}


@pytest.mark.parametrize("row", ROWS, ids=[row.origin for row in ROWS])
def test_row(row: KnownAnswer, results: dict[str, ScoreResult]) -> None:
    result = results[row.origin]
    why = row.disagreement(result.acc_reward, result.status)
    if row.xfail is None:
        assert why is None, f"{why}; {row.note}; error: {result.error}"
    else:
        assert why is not None, f"agrees now: drop its xfail ({row.xfail})"


def test_every_answer_type_has_known_answers() -> None:
    covered = {row.answer_type for row in ROWS}
    served = set(registry.names()) - {FAKE}  # the test-only type other modules register
    assert served <= covered, served - covered
    assert covered <= served, covered - served


def test_rows_come_from_the_package_and_keep_their_notes() -> None:
    files = known_answers.default_files()
    assert files[0].parent == known_answers.PACKAGE_DIR
    assert all(row.note.strip() for row in ROWS)
    assert len(ROWS) >= 800


def test_math_corpus_is_big_balanced_and_sourced() -> None:
    corpus = known_answers.load(files=[known_answers.PACKAGE_DIR / "math_equivalence.jsonl"])
    assert len(corpus) >= 300
    assert sum(row.expected == 0.0 for row in corpus) >= len(corpus) / 4
    assert all(row.source.strip() for row in corpus)


def test_math_corpus_agreement_is_at_least_97_percent(results: dict[str, ScoreResult]) -> None:
    corpus = [row for row in ROWS if row.origin.startswith("math_equivalence.jsonl:")]
    wrong = [row.origin for row in corpus
             if row.disagreement(results[row.origin].acc_reward, results[row.origin].status)]
    assert len(wrong) <= 0.03 * len(corpus), wrong


def _write(tmp_path: Path, *rows: object) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return path


GOOD = {"answer_type": "number", "response": "<answer>3</answer>", "answer": 3,
        "expected": 1.0, "comment": "plain"}


@pytest.mark.parametrize(
    "row,message",
    [
        ({**GOOD, "expected": "1"}, "rows.jsonl:1: field 'expected' has the wrong type"),
        ({k: v for k, v in GOOD.items() if k != "answer"}, "missing field 'answer'"),
        ({**GOOD, "expect": 1.0}, "unknown field 'expect'"),
        ({**GOOD, "comment": " "}, "needs a comment or a source"),
        ({**GOOD, "tolerance": -1}, "tolerance must be >= 0"),
        ({**GOOD, "tolerance": True}, "field 'tolerance' has the wrong type"),
        ([1, 2], "a row is a JSON object"),
    ],
)
def test_malformed_rows_are_refused_with_file_and_line(
    tmp_path: Path, row: object, message: str
) -> None:
    with pytest.raises(RowError, match=message):
        known_answers.load(files=[_write(tmp_path, row)])


def test_a_case_twice_must_keep_its_expectation(tmp_path: Path) -> None:
    same = _write(tmp_path, GOOD, {**GOOD, "comment": "again, from another source"})
    assert [row.origin for row in known_answers.load(files=[same])] == [
        "rows.jsonl:1", "rows.jsonl:2"]
    conflicting = _write(tmp_path, GOOD, {**GOOD, "expected": 0.0})
    with pytest.raises(RowError, match="rows.jsonl:2: the case of rows.jsonl:1"):
        known_answers.load(files=[conflicting])


def test_rows_in_the_checkout_test_directory_are_read(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "known_answers"
    extra.mkdir()
    (extra / "new.jsonl").write_text(json.dumps({**GOOD, "response": "<answer>4</answer>",
                                                 "answer": 4}) + "\n")
    (extra / "number.jsonl").write_text(json.dumps(GOOD) + "\n")  # a name the package has
    monkeypatch.setattr(known_answers, "CHECKOUT_DIR", extra)
    rows = known_answers.load(["number"])
    assert [row.origin for row in rows[-2:]] == [
        "tests/data/known_answers/new.jsonl:1", "tests/data/known_answers/number.jsonl:1"]
    assert len(rows) == len([row for row in ROWS if row.answer_type == "number"]) + 2
    assert len({row.origin for row in rows}) == len(rows)


def test_files_of_one_name_keep_apart(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _write(tmp_path / "a", GOOD)
    second = _write(tmp_path / "b", {**GOOD, "response": "<answer>4</answer>", "answer": 4})
    origins = [row.origin for row in known_answers.load(files=[first, second])]
    assert origins == ["rows.jsonl:1", f"{second}:1"]


@pytest.mark.parametrize(
    "acc,status,why",
    [
        (1.0, "ok", None),
        (0.9999, "ok", "acc_reward 0.9999, expected exactly 1"),
        (1.0, "timeout", "status 'timeout' (acc_reward 1), expected status 'ok'"),
        (None, "http 422", "status 'http 422' (acc_reward no result), expected status 'ok'"),
        (float("nan"), "ok", "acc_reward nan, expected 1"),
    ],
)
def test_disagreement_says_what_differs(acc: float | None, status: str, why: str | None) -> None:
    row = known_answers.parse_row({**GOOD, "tolerance": 0}, "x.jsonl:1")
    assert row.disagreement(acc, status) == why
    assert known_answers.parse_row(GOOD, "x.jsonl:1").disagreement(1.0 - 1e-7, "ok") is None
