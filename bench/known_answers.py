"""Agreement of the verifiers with the known-answer rows, per answer type.

Run: `python bench/known_answers.py [--files GLOB] [--show-misses]`

Scores the rows of `reward_server.known_answers` (the package's `*.jsonl` and the
checkout's `tests/data/known_answers/`), or of the files matching `--files` in the
package directory (e.g. `'*_outputs.jsonl'`: the classes of real model output), with
each verifier's `extract` then `compare` in this process, and prints per answer type how
many rows agree with their label (status and acc_reward). Rows marked `xfail` count as
they come out.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reward_server import known_answers, registry  # noqa: E402
from reward_server.known_answers import KnownAnswer  # noqa: E402
from reward_server.types import ItemContext  # noqa: E402


def score_row(row: KnownAnswer) -> tuple[str, float, str | None]:
    """(status, acc_reward, extracted) of one row, through extract + compare."""
    options = registry.build_options(row.answer_type, row.options)
    context = ItemContext(row.problem_type, row.prompt_type, row.choices)
    module = registry.get(row.answer_type).load()
    extracted = module.extract(row.response, options, context)
    if extracted is None:
        return "no_answer", 0.0, None
    verdict = module.compare(extracted, row.answer, options, context)
    acc = min(1.0, max(0.0, verdict.score)) if verdict.status == "ok" else 0.0
    return verdict.status, acc, extracted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", help="glob of rows files in the package directory")
    parser.add_argument("--types", nargs="*", help="only these answer types")
    parser.add_argument("--show-misses", action="store_true", help="print each miss")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    files = sorted(known_answers.PACKAGE_DIR.glob(args.files)) if args.files else None
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    for row in known_answers.load(args.types, files):
        status, acc, extracted = score_row(row)
        total[row.answer_type] += 1
        why = row.disagreement(acc, status)
        if why is None:
            right[row.answer_type] += 1
        elif args.show_misses:
            print(f"MISS {row.origin} {row.note}: {why} (extracted {extracted!r})")
    print(f"| {'answer type':<18} | rows | agree | share  |")
    print(f"|{'-' * 20}|------|-------|--------|")
    for answer_type in sorted(total):
        share = right[answer_type] / total[answer_type]
        print(f"| {answer_type:<18} | {total[answer_type]:>4} | {right[answer_type]:>5} "
              f"| {share:6.1%} |")
    all_rows, all_right = sum(total.values()), sum(right.values())
    print(f"| {'all':<18} | {all_rows:>4} | {all_right:>5} | {all_right / all_rows:6.1%} |")


if __name__ == "__main__":
    main()
