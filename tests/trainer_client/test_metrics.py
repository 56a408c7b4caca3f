"""Step metrics: unscored items are counted, not averaged as 0; JSONL survives a resume."""

from __future__ import annotations

import math
from pathlib import Path

from trainer_client.metrics import MetricsWriter, read_metrics, reward_metrics


def result(reward: float, status: str = "ok", **components: float) -> dict:
    return {"reward": reward, "acc_reward": reward, "format_reward": 1.0, "status": status,
            "components": components}


def test_reward_metrics_per_source_and_component() -> None:
    results = [result(1.0, iou=0.9), result(0.0, iou=0.1), result(0.0, "timeout"), result(0.5)]
    out = reward_metrics(results, ["a", "a", "a", "b"])
    assert out["reward/mean"] == 0.5  # the timeout is not a 0
    assert out["unscored"] == 1.0
    assert out["reward/a"] == 0.5 and out["reward/b"] == 0.5
    assert math.isclose(out["component/iou"], 0.5)
    assert math.isclose(out["reward/std"], 0.5)


def test_writer_truncates_steps_after_the_resumed_checkpoint(tmp_path: Path) -> None:
    writer = MetricsWriter(tmp_path, tensorboard=False)
    for step in range(1, 5):
        writer.write({"step": step, "reward/mean": float("nan") if step == 4 else 0.1})
    writer.close()
    assert read_metrics(tmp_path)[-1]["reward/mean"] is None  # NaN is written as null
    MetricsWriter(tmp_path, tensorboard=False, resume_step=2).close()
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
    MetricsWriter(tmp_path, tensorboard=False).close()  # a fresh run starts a fresh file
    assert read_metrics(tmp_path) == []


def test_per_source_spread() -> None:
    out = reward_metrics([result(1.0), result(0.0), result(0.5)], ["a", "a", "b"])
    assert math.isclose(out["reward_std/a"], math.sqrt(0.5)) and out["reward_std/b"] == 0.0


def test_rejected_responses_are_scored_zeros() -> None:
    # "rejected": the response made verification fail. A wrong answer, not a service fault.
    results = [result(1.0), {**result(0.9), "status": "rejected"}, result(0.0, "error")]
    out = reward_metrics(results, ["a", "a", "a"])
    assert out["reward/mean"] == 0.5  # (1 + 0) / 2: the rejected one counts as 0
    assert out["acc_reward/mean"] == 0.5
    assert out["unscored"] == 1.0 and out["rejected"] == 1.0


def test_tensorboard_events_are_written(tmp_path: Path) -> None:
    # TensorBoard comes with the `trainer` extra, so the writer always has it here.
    writer = MetricsWriter(tmp_path, tensorboard=True)
    writer.write({"step": 1, "reward/mean": 0.25, "eval/reward/mean": float("nan")})
    writer.close()
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
