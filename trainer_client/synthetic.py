"""Synthetic rows for the tiny CPU demo and the end-to-end tests: "copy the digit".

Each row shows a digit and expects it back, scored by the server's `number` verifier, in
the recipe's row schema, so every part of the pipeline (data loading, prompts, rollouts,
`/score`, curation, both stages) runs as it would on real data. The task is one a
randomly initialised two-layer model can learn on a CPU in a few dozen steps:

- `warmup` / `warmup_cot`: all ten digits, answer-only / chain of thought. A supervised
  pass over these teaches the `<answer>X</answer>` (`<think></think><answer>X</answer>`)
  layout; the tiny model does not learn the copying itself from them in a few steps, so
  the rewards that follow start low;
- `pool` (curation input), `stage1` and `stage2`: digits drawn from a small set
  (`DIGITS`), so GRPO finds signal quickly: a model that prefers those digits already
  earns about half the reward; copying the one shown earns the rest (a tiny model gets
  the first part within the demo's steps, the second takes longer). `stage2` rows are
  chain of thought (`prompt_type` "long"); the stage-1 rows double as its answer-only mix;
- `heldout` / `heldout_cot`: rows of the same task with ids of their own, answered
  greedily during training to pick the best checkpoint (`eval_data`).

    python -m trainer_client.synthetic OUT_DIR [--rows N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DIGITS = (3, 7)


def digit_rows(
    name: str,
    digits: Sequence[int],
    count: int,
    *,
    prompt_type: str = "normal",
    source: str = "digits",
    seed: int = 0,
) -> list[dict[str, Any]]:
    rng = random.Random(f"{name}-{seed}")
    rows = []
    for i in range(count):
        digit = digits[i % len(digits)] if i < len(digits) else rng.choice(list(digits))
        rows.append(
            {
                "id": f"{name}-{i}",
                "images": [],
                "problem": f"Copy the digit: {digit}.",
                "answer": [str(digit)],
                "problem_type": "counting",
                "answer_type": "number",
                "source": source,
                "prompt_type": prompt_type,
            }
        )
    return rows


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_demo_data(out_dir: str | Path, rows: int = 64, seed: int = 0) -> dict[str, Path]:
    """The demo's data files (warmup, warmup_cot, pool, stage1, stage2, heldout,
    heldout_cot JSONL) in `out_dir`."""
    out = Path(out_dir)
    held = max(rows // 4, len(DIGITS))
    return {
        "warmup": write_jsonl(out / "warmup.jsonl", digit_rows("warm", range(10), rows, seed=seed)),
        "warmup_cot": write_jsonl(
            out / "warmup_cot.jsonl",
            digit_rows("warm-cot", range(10), rows, prompt_type="long", seed=seed),
        ),
        "pool": write_jsonl(out / "pool.jsonl", digit_rows("pool", DIGITS, rows, seed=seed)),
        "stage1": write_jsonl(out / "stage1.jsonl", digit_rows("s1", DIGITS, rows, seed=seed)),
        "stage2": write_jsonl(
            out / "stage2.jsonl",
            digit_rows("s2", DIGITS, rows, prompt_type="long", source="digits-cot", seed=seed),
        ),
        "heldout": write_jsonl(out / "heldout.jsonl", digit_rows("held", DIGITS, held, seed=seed)),
        "heldout_cot": write_jsonl(
            out / "heldout_cot.jsonl",
            digit_rows("held-cot", DIGITS, held, prompt_type="long", source="digits-cot",
                       seed=seed),
        ),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--rows", type=int, default=64, help="rows per file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name, path in write_demo_data(args.out_dir, args.rows, args.seed).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
