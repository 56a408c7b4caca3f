"""Per-step training metrics: computed from scored rollouts, written as JSONL (+ TensorBoard).

One JSON object per step in RUN/metrics.jsonl, flat keys, `/` separating a family from its
member so TensorBoard groups them:

- `reward/mean`, `reward/std` over scored items, `reward/<source>` and
  `reward_std/<source>` per data source,
  `acc_reward/mean`, `format_reward/mean`, `component/<name>` (means of the verifiers'
  named components), `unscored` (items with status timeout/error: faults of the service,
  left out), `rejected` (responses that made verification fail: scored 0, counted in);
- `response_length/mean`, `response_length/max` (tokens), `truncated_fraction`;
- `prompts/answer_only`, `prompts/chain_of_thought`: the batch's mix (stage 2 mixes);
- `groups`, `zero_signal_groups` (groups whose rewards are all equal: no GRPO signal);
- update: `loss`, `clip_fraction`, `approx_kl`, `kl_ref`, `entropy`, `grad_norm`, `lr`,
  `skipped_optimizer_steps` (non-finite gradient norm), `behav_weight_mean` and
  `behav_filtered_fraction` (decoupled loss, vLLM engine only);
- held-out evaluation (every `eval_every` steps): `eval/reward/mean`, `eval/pass_at_1`,
  `eval/reward/<source>`;
- time: `time/rollout_s`, `time/scoring_s`, `time/update_s`.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reward_client import is_scored

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def std(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


REJECTED = "rejected"


def reward_of(result: dict[str, Any]) -> float:
    """The reward of a scored result; a `rejected` response (it made verification fail)
    is a wrong answer, 0, whatever number came with it."""
    if result.get("status") == REJECTED:
        return 0.0
    return float(result.get("reward", 0.0))


def acc_of(result: dict[str, Any]) -> float:
    """The accuracy part of a scored result (0 for a `rejected` response)."""
    if result.get("status") == REJECTED:
        return 0.0
    return float(result.get("acc_reward", 0.0))


def reward_metrics(results: Sequence[dict[str, Any]], sources: Sequence[str]) -> dict[str, float]:
    """Reward statistics of one batch; unscored items are counted, not averaged as 0."""
    scored = [(r, s) for r, s in zip(results, sources, strict=True) if is_scored(r)]
    rewards = [reward_of(r) for r, _ in scored]
    out: dict[str, float] = {
        "reward/mean": mean(rewards),
        "reward/std": std(rewards),
        "acc_reward/mean": mean([acc_of(r) for r, _ in scored]),
        "format_reward/mean": mean([float(r.get("format_reward", 0.0)) for r, _ in scored]),
        "unscored": float(len(results) - len(scored)),
        "rejected": float(sum(r.get("status") == REJECTED for r, _ in scored)),
    }
    by_source: dict[str, list[float]] = defaultdict(list)
    components: dict[str, list[float]] = defaultdict(list)
    for result, source in scored:
        by_source[source].append(reward_of(result))
        for name, value in (result.get("components") or {}).items():
            components[name].append(float(value))
    for source, values in sorted(by_source.items()):
        out[f"reward/{source}"] = mean(values)
        out[f"reward_std/{source}"] = std(values)
    for name, values in sorted(components.items()):
        out[f"component/{name}"] = mean(values)
    return out


class MetricsWriter:
    """Appends step records to RUN/metrics.jsonl and, when installed, TensorBoard events."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, resume_step: int | None = None):
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / METRICS_FILE
        if resume_step is None:
            self.path.unlink(missing_ok=True)
        else:
            # Steps logged after the checkpoint we resume from will be run again.
            records = [r for r in read_metrics(self.path) if r["step"] <= resume_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in records))
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.info("tensorboard is not installed; metrics go to %s only", self.path)
            else:
                self._tb = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        # NaN (e.g. the mean of no scored items) is not JSON: it is written as null.
        clean = {
            k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in record.items()
        }
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(clean) + "\n")
        if self._tb is not None:
            for key, value in record.items():
                if isinstance(value, int | float) and key != "step" and math.isfinite(value):
                    self._tb.add_scalar(key, value, record["step"])
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl file (a missing file has none)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
