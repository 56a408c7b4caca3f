"""What a validation run found: per-row outcomes summed up per answer type.

No transport here: a runner (in-process, HTTP, gRPC) produces one `Outcome` per row and
`build_report` judges them. An answer type passes when every row the code of this version
gets right (every row without `xfail`) agrees, or, with a `min_agreement` fraction for
that type, when at least that share of its rows agrees.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reward_server.known_answers import KnownAnswer


@dataclass(frozen=True)
class Outcome:
    """What the deployment said about one row.

    `status` is the result's status, or for an item that got no result the transport's
    reason (`http 422`, `client_timeout`, `unreachable`); `acc_reward` is None then.
    """

    row: KnownAnswer
    acc_reward: float | None
    status: str
    latency_s: float
    error: str | None = None
    cached: bool = False  # the deployment answered from its verdict cache
    attempts: int = 1  # more than 1: sent again after a timeout or a transport failure

    @property
    def disagreement(self) -> str | None:
        return self.row.disagreement(self.acc_reward, self.status)


@dataclass(frozen=True)
class TypeSummary:
    answer_type: str
    rows: int
    agreed: int
    expected_right: int  # rows without xfail: what this version gets right
    missed_right: int  # of those, how many disagree
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]  # statuses other than ok, with counts
    cached: int  # answered from the deployment's verdict cache, not by a verifier
    retried: int  # sent more than once (the last answer counts)
    min_agreement: float | None
    passed: bool

    @property
    def agreement(self) -> float:
        return self.agreed / self.rows if self.rows else 1.0

    @property
    def threshold_text(self) -> str:
        if self.min_agreement is None:
            return f"{self.expected_right} known right"
        return f">= {self.min_agreement:.1%}"


@dataclass(frozen=True)
class Report:
    target: str
    transport: str
    summaries: list[TypeSummary]
    outcomes: list[Outcome] = field(repr=False)

    @property
    def passed(self) -> bool:
        return all(summary.passed for summary in self.summaries)

    @property
    def disagreements(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.disagreement is not None]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (`reward-server validate --json`)."""
        return {
            "target": self.target,
            "transport": self.transport,
            "passed": self.passed,
            "answer_types": [
                {
                    "answer_type": s.answer_type,
                    "rows": s.rows,
                    "agreed": s.agreed,
                    "agreement": s.agreement,
                    "disagreements": s.rows - s.agreed,
                    "known_right": s.expected_right,
                    "known_right_missed": s.missed_right,
                    "min_agreement": s.min_agreement,
                    "p50_ms": s.p50_ms,
                    "p99_ms": s.p99_ms,
                    "statuses": s.statuses,
                    "cached": s.cached,
                    "retried": s.retried,
                    "passed": s.passed,
                }
                for s in self.summaries
            ],
            "disagreements": [
                {
                    "origin": o.row.origin,
                    "answer_type": o.row.answer_type,
                    "why": o.disagreement,
                    "xfail": o.row.xfail,
                    "error": o.error,
                    "attempts": o.attempts,
                    "note": o.row.note,
                    "response": o.row.response,
                    "answer": o.row.answer,
                }
                for o in self.disagreements
            ],
        }

    def text(self, width: int = 100) -> str:
        """The table per answer type, then every disagreement, as printed by the CLI."""
        header = ("answer type", "rows", "agreement", "disagree", "p50 ms", "p99 ms",
                  "cached", "not ok", "must agree", "result")
        table = [header]
        for s in self.summaries:
            counts = sorted(s.statuses.items()) + ([("retried", s.retried)] if s.retried else [])
            statuses = ", ".join(f"{k} {v}" for k, v in counts) or "-"
            table.append((s.answer_type, str(s.rows), f"{s.agreement:.1%}",
                          str(s.rows - s.agreed), f"{s.p50_ms:.1f}", f"{s.p99_ms:.1f}",
                          str(s.cached), statuses, s.threshold_text,
                          "pass" if s.passed else "FAIL"))
        widths = [max(len(line[i]) for line in table) for i in range(len(header))]
        lines = [f"Known answers against {self.target} ({self.transport})", ""]
        for number, line in enumerate(table):
            cells = [
                cell.ljust(w) if i in (0, 7, 8, 9) else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
            if number == 0:
                lines.append("  ".join("-" * w for w in widths))
        total = len(self.outcomes)
        agreed = total - len(self.disagreements)
        lines += ["", f"{agreed}/{total} rows agree; "
                  + ("PASSED" if self.passed else "FAILED: an answer type is below its threshold")]
        if self.disagreements:
            lines += ["", f"Disagreements ({len(self.disagreements)}):"]
            for o in self.disagreements:
                mark = f" [xfail: {o.row.xfail}]" if o.row.xfail else ""
                lines.append(f"- {o.row.answer_type} {o.row.origin}: {o.disagreement}{mark}")
                lines.append(f"    response {_clip(o.row.response, width)}")
                lines.append(f"    answer   {_clip(o.row.answer, width)}")
                if o.row.note:
                    lines.append(f"    why      {_clip(o.row.note, width)}")
                if o.error:
                    lines.append(f"    error    {_clip(o.error, width)}")
        return "\n".join(lines)


def _clip(value: Any, width: int) -> str:
    """`repr` (quotes and escapes show what was sent exactly), cut to `width`."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1]); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def build_report(
    target: str,
    transport: str,
    outcomes: Sequence[Outcome],
    min_agreement: Mapping[str, float] | None = None,
) -> Report:
    """Judge the outcomes per answer type (in name order); see the module docstring.

    `min_agreement` maps an answer type (or "*" for all) to the fraction of its rows that
    must agree, instead of the default threshold.
    """
    thresholds = dict(min_agreement or {})
    by_type: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_type.setdefault(outcome.row.answer_type, []).append(outcome)
    summaries = []
    for answer_type in sorted(by_type):
        group = by_type[answer_type]
        agreed = sum(o.disagreement is None for o in group)
        right = [o for o in group if o.row.xfail is None]
        missed = sum(o.disagreement is not None for o in right)
        threshold = thresholds.get(answer_type, thresholds.get("*"))
        passed = missed == 0 if threshold is None else agreed / len(group) >= threshold
        latencies_ms = [o.latency_s * 1000 for o in group]
        summaries.append(
            TypeSummary(
                answer_type=answer_type,
                rows=len(group),
                agreed=agreed,
                expected_right=len(right),
                missed_right=missed,
                p50_ms=percentile(latencies_ms, 0.50),
                p99_ms=percentile(latencies_ms, 0.99),
                statuses=dict(Counter(o.status for o in group if o.status != "ok")),
                cached=sum(o.cached for o in group),
                retried=sum(o.attempts > 1 for o in group),
                min_agreement=threshold,
                passed=passed,
            )
        )
    return Report(target, transport, summaries, list(outcomes))
