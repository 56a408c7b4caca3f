"""Which rows each stage trains on, and the order it sees them in.

RECIPE.md, "Two-Stage Training Procedure": stage 1 trains on the answer-only rows
(`prompt_type == normal`); stage 2 trains on the chain-of-thought rows and mixes in a small
share of answer-only rows so perception skills are not forgotten.

`BatchSampler` draws each batch of `prompts_per_step` prompts from two streams: the
stage's main rows and (stage 2) the answer-only rows. The number of mixed rows in the first
`t` batches is `round(share * prompts_per_step * t)`, so the share holds exactly over a run
even when one batch is too small to carry a fraction of it (e.g. 10% of 4 prompts). Each
stream is reshuffled every epoch with a seed derived from (seed, stream, epoch); the whole
position is a small dict (`state_dict`) saved with checkpoints so `--resume` continues
with exactly the batch that would have come next.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from trainer_client.data import Row


@dataclass
class _Stream:
    rows: list[Row]
    seed: int
    epoch: int = 0
    position: int = 0
    _order: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._shuffle()

    def _shuffle(self) -> None:
        self._order = list(range(len(self.rows)))
        random.Random(self.seed * 1_000_003 + self.epoch).shuffle(self._order)

    def take(self, count: int) -> list[Row]:
        taken: list[Row] = []
        while len(taken) < count:
            if self.position == len(self._order):
                self.epoch += 1
                self.position = 0
                self._shuffle()
            taken.append(self.rows[self._order[self.position]])
            self.position += 1
        return taken


class BatchSampler:
    def __init__(
        self,
        main: list[Row],
        prompts_per_step: int,
        seed: int,
        mixed: list[Row] | None = None,
        mixed_share: float = 0.0,
    ) -> None:
        if not main:
            raise ValueError("no rows to train on for this stage")
        if mixed_share and not mixed:
            raise ValueError("normal_share > 0 but there are no answer-only rows to mix in")
        self.prompts_per_step = prompts_per_step
        self.mixed_share = mixed_share if mixed else 0.0
        self.main = _Stream(main, seed * 2)
        self.mixed = _Stream(mixed or [], seed * 2 + 1)
        self.batches = 0

    def mixed_count(self, batch_index: int) -> int:
        """Mixed rows in batch `batch_index` (0-based) so the running share stays exact."""
        per_batch = self.mixed_share * self.prompts_per_step
        return round(per_batch * (batch_index + 1)) - round(per_batch * batch_index)

    def next_batch(self) -> list[Row]:
        mixed = min(self.mixed_count(self.batches), self.prompts_per_step)
        self.batches += 1
        return self.main.take(self.prompts_per_step - mixed) + self.mixed.take(mixed)

    def epoch_length(self) -> int:
        """Batches in one pass over the main rows."""
        main_per_batch = self.prompts_per_step * (1 - self.mixed_share)
        return max(1, int(len(self.main.rows) // max(main_per_batch, 1)))

    def state_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "main": {"epoch": self.main.epoch, "position": self.main.position},
            "mixed": {"epoch": self.mixed.epoch, "position": self.mixed.position},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batches = int(state["batches"])
        for name in ("main", "mixed"):
            stream: _Stream = getattr(self, name)
            stream.epoch = int(state[name]["epoch"])
            stream.position = int(state[name]["position"])
            stream._shuffle()


def stage_rows(
    stage: int, rows: list[Row], normal_rows: list[Row] | None = None
) -> tuple[list[Row], list[Row]]:
    """(main rows, rows to mix in) for a stage.

    Stage 1: the answer-only rows, nothing mixed. Stage 2: the chain-of-thought rows, with
    the answer-only rows of `normal_rows` (or, when None, of `rows`) to mix in.
    """
    if stage == 1:
        return [row for row in rows if row.answer_only], []
    pool = rows if normal_rows is None else normal_rows
    return [row for row in rows if not row.answer_only], [row for row in pool if row.answer_only]
