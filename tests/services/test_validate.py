"""`reward-server validate`: passes against the real server, fails against a wrong one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reward_server import known_answers, registry
from reward_server.known_answers import KnownAnswer
from services.validate import ValidationUnavailable, run_validation
from tests.conftest import FAKE
from tests.services.server_process import ROOT, free_port


def validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "validate", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )


def wrong_on(row: KnownAnswer) -> bool:
    """What the wrong server (every item 1.0 `ok`, boolean items HTTP 500) gets wrong,
    once its first `timeout` for each critic item is retried."""
    return row.answer_type == "boolean" or row.status != "ok" or row.expected != 1.0


def test_real_server_passes_every_answer_type(known_answer_server: str) -> None:
    done = validate("--url", known_answer_server, "--json")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["passed"] is True
    types = {t["answer_type"]: t for t in report["answer_types"]}
    assert set(types) == set(registry.names()) - {FAKE}  # test-fake: registered by other tests
    assert sum(t["rows"] for t in types.values()) == len(known_answers.load())
    for summary in types.values():
        assert summary["passed"] and summary["known_right_missed"] == 0, summary
        assert 0 < summary["p50_ms"] <= summary["p99_ms"]
    # the only disagreements are the rows this version is known to get wrong
    xfail = {row.origin for row in known_answers.load() if row.xfail}
    assert {d["origin"] for d in report["disagreements"]} == xfail
    # a second run against the same process is answered from its verdict cache, and says so
    again = run_validation(known_answer_server, ["critic"])
    assert again.passed and again.summaries[0].cached == again.summaries[0].rows == 5


def test_text_report_of_a_subset(known_answer_server: str) -> None:
    done = validate("--url", known_answer_server, "--answer-types", "number", "critic")
    assert done.returncode == 0, done.stdout
    table = done.stdout.splitlines()
    assert table[0] == f"Known answers against {known_answer_server} (http)"
    assert table[2].split()[:4] == ["answer", "type", "rows", "agreement"]
    rows = {line.split()[0]: line.split() for line in table[4:6]}
    numbers = len(known_answers.load(["number"]))
    assert rows["number"][1:4] == [str(numbers), "100.0%", "0"] and rows["number"][-1] == "pass"
    assert rows["critic"][-1] == "pass"
    assert f"{numbers + len(known_answers.load(['critic']))} rows agree; PASSED" in done.stdout
    assert "Disagreements" not in done.stdout


def test_wrong_server_fails_and_lists_every_disagreement(wrong_server: str) -> None:
    types = ["boolean", "multiple-choice", "number"]
    done = validate("--url", wrong_server, "--answer-types", *types)
    assert done.returncode == 1, done.stdout
    rows = known_answers.load(types)
    wrong = [row for row in rows if wrong_on(row)]
    assert f"Disagreements ({len(wrong)}):" in done.stdout
    listed = [line for line in done.stdout.splitlines() if line.startswith("- ")]
    assert [line.split(":")[0] + ":" + line.split(":")[1] for line in listed] == [
        f"- {row.answer_type} {row.origin}" for row in wrong
    ]
    boolean = next(line for line in done.stdout.splitlines() if line.startswith("boolean"))
    assert "http 500 30" in boolean and boolean.endswith("FAIL")
    assert "FAILED: an answer type is below its threshold" in done.stdout


def test_wrong_server_report_as_data(wrong_server: str) -> None:
    report = run_validation(wrong_server, ["boolean", "ocrtext"])
    assert not report.passed
    summaries = {s.answer_type: s for s in report.summaries}
    assert summaries["boolean"].agreed == 0
    assert summaries["boolean"].statuses == {"http 500": summaries["boolean"].rows}
    ocr = known_answers.load(["ocrtext"])
    assert summaries["ocrtext"].agreed == sum(not wrong_on(row) for row in ocr)
    assert not summaries["ocrtext"].passed
    assert {o.row.origin for o in report.disagreements} == {
        row.origin for row in known_answers.load(["boolean", "ocrtext"]) if wrong_on(row)
    }
    boolean = next(o for o in report.disagreements if o.row.answer_type == "boolean")
    assert boolean.error == "boolean verifier is down" and boolean.acc_reward is None
    assert boolean.attempts == 2 and summaries["boolean"].retried == summaries["boolean"].rows


def critic_rows(path: Path) -> Path:
    """The critic rows under a new file name: ids the wrong server has not seen."""
    lines = (known_answers.PACKAGE_DIR / "exact.jsonl").read_text().splitlines()
    path.write_text("\n".join(line for line in lines if '"critic"' in line) + "\n")
    return path


def test_timeouts_are_sent_again(wrong_server: str, tmp_path: Path) -> None:
    critic = known_answers.load(["critic"])
    once = run_validation(wrong_server, retries=0, files=[critic_rows(tmp_path / "a.jsonl")])
    assert once.summaries[0].statuses == {"timeout": len(critic)}
    assert once.summaries[0].agreed == 0 and once.summaries[0].retried == 0
    # fresh ids: every item times out once, then is answered on the retry
    fresh = run_validation(wrong_server, files=[critic_rows(tmp_path / "b.jsonl")])
    summary = fresh.summaries[0]
    assert summary.retried == len(critic) and summary.statuses == {}
    assert summary.agreed == sum(not wrong_on(row) for row in critic)
    assert "retried 5" in fresh.text()


def test_min_agreement_replaces_the_default_threshold(wrong_server: str) -> None:
    rows = known_answers.load(["number"])
    share = sum(not wrong_on(row) for row in rows) / len(rows)
    assert 0 < share < 1
    at = run_validation(wrong_server, ["number"], min_agreement={"number": share})
    above = run_validation(wrong_server, ["number"], min_agreement={"*": share + 0.01})
    assert at.passed and not above.passed
    done = validate("--url", wrong_server, "--answer-types", "number",
                    "--min-agreement", f"number={share}")
    assert done.returncode == 0 and "pass" in done.stdout
    bad = validate("--url", wrong_server, "--min-agreement", "number=2")
    assert bad.returncode == 2 and "FRACTION must be in [0, 1]" in bad.stderr


def test_own_rows_file(wrong_server: str, tmp_path: Path) -> None:
    rows = tmp_path / "mine.jsonl"
    rows.write_text(json.dumps({"answer_type": "any", "response": "<answer>x</answer>",
                                "answer": "y", "expected": 0.0, "comment": "wrong word"}))
    done = validate("--url", wrong_server, "--rows", str(rows))
    assert done.returncode == 1
    assert "- any mine.jsonl:1: acc_reward 1, expected within 1e-06 of 0" in done.stdout


def test_cannot_run_is_exit_2_with_the_reason() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    done = validate("--url", dead)
    assert done.returncode == 2 and f"{dead}/health" in done.stderr
    with pytest.raises(ValidationUnavailable, match="/health"):
        run_validation(dead)
    dead_grpc = f"127.0.0.1:{free_port()}"
    grpc = validate("--url", dead_grpc, "--transport", "grpc", "--timeout", "2")
    assert grpc.returncode == 2 and f"grpc://{dead_grpc} health" in grpc.stderr
    wrong = validate("--url", f"grpc://{dead_grpc}", "--transport", "http")
    assert wrong.returncode == 2 and "is a gRPC URL" in wrong.stderr


def test_grpc_transport_passes_against_the_real_server(known_answer_grpc: str) -> None:
    types = ["bbox", "critic", "number"]
    done = validate("--url", known_answer_grpc, "--answer-types", *types, "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert (report["transport"], report["passed"]) == ("grpc", True)
    assert [t["answer_type"] for t in report["answer_types"]] == types
    assert sum(t["agreed"] for t in report["answer_types"]) == len(known_answers.load(types))


def test_refused_items_are_disagreements_on_both_transports(
    known_answer_server: str, known_answer_grpc: str, tmp_path: Path
) -> None:
    rows = tmp_path / "refused.jsonl"
    rows.write_text(json.dumps({"answer_type": "haiku", "response": "<answer>x</answer>",
                                "answer": "x", "expected": 1.0, "comment": "no such type"}))
    for url, status in [(known_answer_server, "http 422"),
                        (known_answer_grpc, "grpc INVALID_ARGUMENT")]:
        report = run_validation(url, files=[rows])
        (outcome,) = report.outcomes
        assert (outcome.status, outcome.attempts, report.passed) == (status, 1, False)
        assert "answer_type" in (outcome.error or "")
