"""Every known-answer row under `tests/data/known_answers/*.jsonl`, checked in process.

A row is one case (the format is the project's known-answer contract): `answer_type`,
`response` (a whole completion), `answer` (the reference), `expected` (acc_reward),
optional `status` (default `ok`), `choices`, `options`, `problem_type`, `prompt_type`,
`tolerance` (default 1e-6), a `comment` and the `source` the case class comes from.
Each row runs the verifier's `extract` then `compare`, as the engine does, without the
worker pool.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reward_server import registry
from reward_server.types import ItemContext

KNOWN_ANSWERS = Path(__file__).resolve().parents[2] / "data" / "known_answers"


def load_rows(directory: Path = KNOWN_ANSWERS) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(directory.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                rows.append({**json.loads(line), "_where": f"{path.name}:{number}"})
    return rows


def score_row(row: dict[str, Any]) -> tuple[str, float, str | None]:
    """(status, acc_reward, extracted) of one row, through extract + compare."""
    answer_type = row["answer_type"]
    options = registry.build_options(answer_type, row.get("options"))
    choices = row.get("choices")
    context = ItemContext(row.get("problem_type"), row.get("prompt_type"),
                          tuple(choices) if choices is not None else None)
    module = registry.get(answer_type).load()
    extracted = module.extract(row["response"], options, context)
    if extracted is None:
        return "no_answer", 0.0, None
    verdict = module.compare(extracted, row["answer"], options, context)
    acc = min(1.0, max(0.0, verdict.score)) if verdict.status == "ok" else 0.0
    return verdict.status, acc, extracted


def agrees(row: dict[str, Any], status: str, acc: float) -> bool:
    return status == row.get("status", "ok") and abs(acc - row["expected"]) <= row.get(
        "tolerance", 1e-6
    )


ROWS = load_rows()


def test_every_answer_type_has_rows() -> None:
    assert {"multiple-choice", "number", "math-expressions", "bbox"} <= {
        row["answer_type"] for row in ROWS
    }
    assert all(row.get("source") and row.get("comment") for row in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[row["_where"] for row in ROWS])
def test_known_answer(row: dict[str, Any]) -> None:
    status, acc, extracted = score_row(row)
    assert agrees(row, status, acc), (
        f"{row['comment']}: got status={status} acc={acc} (extracted {extracted!r}), "
        f"expected status={row.get('status', 'ok')} acc={row['expected']}"
    )
