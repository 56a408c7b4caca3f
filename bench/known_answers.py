"""Agreement of the verifiers with the known-answer rows, per answer type.

Run: `python bench/known_answers.py [--show-misses]`

Scores every row of `tests/data/known_answers/*.jsonl` the way the test suite does
(`extract` then `compare`, in process) and prints, per answer type, how many rows agree
with their label (status and acc_reward).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reward_server.verifiers.test_known_answers import (  # noqa: E402
    agrees,
    load_rows,
    score_row,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-misses", action="store_true", help="print each miss")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    for row in load_rows():
        status, acc, extracted = score_row(row)
        total[row["answer_type"]] += 1
        if agrees(row, status, acc):
            right[row["answer_type"]] += 1
        elif args.show_misses:
            print(f"MISS {row['_where']} {row['comment']}: {status} {acc} from {extracted!r}")
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
