"""Rolling out a model on rows and scoring it: `trainer-client eval`, and curation's base.

Per row, `samples` responses are drawn and scored by the reward server. A response counts
as correct when its `acc_reward` reaches `correct_threshold` (1.0 by default: a fully
right answer; partial credit such as ANLS or IoU does not count). Per row:

- `mean_reward`: mean `reward` over the row's scored responses;
- `pass_at_1`: mean correctness, the unbiased estimate of Pass@1 from N samples;
- `pass_at_n`: 1 if any response is correct (Pass@N).

Responses the server could not judge (status `timeout`/`error`: a fault of the service,
"unscored") are left out of these means; a row with none judged has `scored == 0` and no
statistics. A response the service `rejected` (it made verification fail) is scored: a
wrong answer with reward 0.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from reward_client import RewardClient, is_scored
from trainer_client.data import Row
from trainer_client.metrics import acc_of, mean, reward_of
from trainer_client.policy import Policy
from trainer_client.rollout import RolloutEngine, build_prompts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowStats:
    row: Row
    scored: int
    mean_reward: float
    pass_at_1: float
    pass_at_n: float
    responses: tuple[str, ...] = ()


@dataclass(frozen=True)
class SamplingOptions:
    samples: int = 1
    max_new_tokens: int = 1024
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    prompts_per_batch: int = 8
    seed: int = 0
    correct_threshold: float = 1.0


def score_rows(
    policy: Policy,
    engine: RolloutEngine,
    client: RewardClient,
    rows: Sequence[Row],
    options: SamplingOptions,
    desc: str = "rollouts",
    progress: bool = True,
) -> list[RowStats]:
    """Roll out `options.samples` responses per row, score them, and summarise each row."""
    stats: list[RowStats] = []
    n = options.samples
    bar = tqdm(range(0, len(rows), options.prompts_per_batch), desc=desc, unit="batch",
               disable=not progress)
    for start in bar:
        batch = list(rows[start : start + options.prompts_per_batch])
        rollouts = engine.generate(
            build_prompts(policy, batch),
            n,
            max_new_tokens=options.max_new_tokens,
            temperature=options.temperature,
            top_p=options.top_p,
            seed=options.seed * 1_000_003 + start,
        )
        items = [
            batch[r.prompt_index].score_item(r.text, item_id=f"{batch[r.prompt_index].id}#{k % n}")
            for k, r in enumerate(rollouts)
        ]
        bar.set_postfix_str(f"scoring {len(items)} items")
        results = client.score(items)
        for i, row in enumerate(batch):
            group = results[i * n : (i + 1) * n]
            texts = tuple(r.text for r in rollouts[i * n : (i + 1) * n])
            stats.append(row_stats(row, group, options.correct_threshold, texts))
        bar.set_postfix(reward=f"{mean([s.mean_reward for s in stats if s.scored]):.3f}")
    return stats


def row_stats(
    row: Row, results: Sequence[dict[str, Any]], correct_threshold: float, texts: tuple[str, ...]
) -> RowStats:
    scored = [r for r in results if is_scored(r)]
    correct = [float(acc_of(r) >= correct_threshold) for r in scored]
    return RowStats(
        row=row,
        scored=len(scored),
        mean_reward=mean([reward_of(r) for r in scored]),
        pass_at_1=mean(correct),
        pass_at_n=float(any(correct)) if scored else float("nan"),
        responses=texts,
    )


def per_source(stats: Sequence[RowStats]) -> dict[str, dict[str, Any]]:
    """Rows, mean reward and Pass@1 per source (and `all`), over rows that were scored."""
    groups: dict[str, list[RowStats]] = defaultdict(list)
    for s in stats:
        if s.scored:
            groups[s.row.source].append(s)
            groups["all"].append(s)
    return {
        source: {
            "rows": len(members),
            "mean_reward": mean([s.mean_reward for s in members]),
            "pass_at_1": mean([s.pass_at_1 for s in members]),
            "pass_at_n": mean([s.pass_at_n for s in members]),
        }
        for source, members in sorted(groups.items(), key=lambda kv: (kv[0] == "all", kv[0]))
    }


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table (numbers to 3 decimals)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for row in cells:
        # first column (names) left-aligned, numbers right-aligned
        padded = [c.rjust(w) if i else c.ljust(w)
                  for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        out.append("  ".join(padded))
    return "\n".join(out)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def evaluation_table(stats: Sequence[RowStats]) -> str:
    table = per_source(stats)
    return format_table(
        ["source", "rows", "mean reward", "pass@1", "pass@n"],
        [[src, v["rows"], v["mean_reward"], v["pass_at_1"], v["pass_at_n"]]
         for src, v in table.items()],
    )
