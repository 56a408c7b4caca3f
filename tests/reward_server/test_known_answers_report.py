"""`build_report`: thresholds per answer type, xfail rows, latency percentiles, the text."""

from __future__ import annotations

import pytest

from reward_server.known_answers import KnownAnswer
from reward_server.known_answers.report import Outcome, build_report, percentile


def row(answer_type: str, number: int, expected: float = 1.0, xfail: str | None = None
        ) -> KnownAnswer:
    return KnownAnswer(answer_type, f"<answer>{number}</answer>", number, expected,
                       f"{answer_type}.jsonl:{number}", comment=f"case {number}", xfail=xfail)


def outcome(case: KnownAnswer, acc: float | None, status: str = "ok",
            latency_s: float = 0.01, attempts: int = 1) -> Outcome:
    return Outcome(case, acc, status, latency_s, attempts=attempts)


def test_default_threshold_is_every_row_without_xfail() -> None:
    known_wrong = row("math", 3, xfail="not read yet")
    outcomes = [outcome(row("math", 1), 1.0), outcome(row("math", 2), 1.0),
                outcome(known_wrong, 0.0)]
    report = build_report("http://x", "http", outcomes)
    (summary,) = report.summaries
    assert (summary.rows, summary.agreed, summary.expected_right, summary.missed_right) == (
        3, 2, 2, 0)
    assert summary.passed and report.passed
    assert [o.row.origin for o in report.disagreements] == ["math.jsonl:3"]
    assert "[xfail: not read yet]" in report.text()
    # one known-right row wrong fails the type, even with the xfail row now right
    flipped = [outcome(row("math", 1), 0.0), outcome(row("math", 2), 1.0),
               outcome(known_wrong, 1.0)]
    assert not build_report("http://x", "http", flipped).passed


def test_min_agreement_per_type_and_for_all() -> None:
    outcomes = [outcome(row("a", n), 1.0 if n < 3 else 0.0) for n in range(4)]
    outcomes += [outcome(row("b", n), 1.0) for n in range(2)]
    assert not build_report("u", "http", outcomes).passed
    assert build_report("u", "http", outcomes, {"a": 0.75}).passed
    assert not build_report("u", "http", outcomes, {"a": 0.76}).passed
    both = build_report("u", "http", outcomes, {"*": 0.75})
    assert both.passed and [s.threshold_text for s in both.summaries] == [">= 75.0%"] * 2


def test_statuses_latency_and_retries_are_counted() -> None:
    outcomes = [
        outcome(row("n", 1), 1.0, latency_s=0.010),
        outcome(row("n", 2), 1.0, latency_s=0.030, attempts=2),
        outcome(row("n", 3), None, status="http 503", latency_s=0.020, attempts=2),
        outcome(row("n", 4), 0.0, status="timeout", latency_s=5.0, attempts=2),
    ]
    (summary,) = build_report("u", "http", outcomes).summaries
    assert summary.statuses == {"http 503": 1, "timeout": 1}
    assert summary.retried == 3 and summary.agreed == 2
    assert (summary.p50_ms, summary.p99_ms) == pytest.approx((20.0, 5000.0))
    table = build_report("u", "http", outcomes).text().splitlines()
    line = next(text for text in table if text.startswith("n "))
    assert "http 503 1, timeout 1, retried 3" in line and line.endswith("FAIL")


@pytest.mark.parametrize(
    "values,q,expected",
    [([], 0.5, 0.0), ([3.0], 0.99, 3.0), ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
     ([float(n) for n in range(1, 101)], 0.99, 99.0)],
)
def test_nearest_rank_percentile(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_report_as_data() -> None:
    report = build_report("u", "http", [outcome(row("n", 1), 0.5)])
    data = report.to_dict()
    assert data["passed"] is False
    assert data["answer_types"][0]["disagreements"] == 1
    (wrong,) = data["disagreements"]
    assert wrong["origin"] == "n.jsonl:1" and wrong["note"] == "case 1"
    assert wrong["why"] == "acc_reward 0.5, expected within 1e-06 of 1"
