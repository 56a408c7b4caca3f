"""`trainer-client plot RUN_DIR`: one PNG of a run's metrics over steps.

Four panels from RUN_DIR/metrics.jsonl: reward (total and per source, the held-out reward
as dots where it was evaluated, and the format reward dashed: the recipe leaves it out of
the reward, so it can drift), response length
(mean and max tokens), clip fraction (with approx KL to the rollout policy and, on a
right axis, the gradient norm), and the
share of groups with no signal (all rewards equal) next to the share of unscored items.
Several run folders (e.g. stage 1 then stage 2) are drawn one after the other on a shared
step axis, with a dashed line where each later stage starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainer_client.metrics import read_metrics

_SOURCE_PREFIX = "reward/"
_NOT_SOURCES = {"reward/mean", "reward/std"}


def _series(records: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
    return [p[0] for p in points], [float(p[1]) for p in points]


def plot_runs(run_dirs: Sequence[str | Path], out: str | Path | None = None) -> Path:
    """Draw the runs' metrics; returns the PNG path (default RUN_DIR/plot.png of the last)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records: list[dict[str, Any]] = []
    boundaries: list[tuple[int, str]] = []
    offset = 0
    for run in run_dirs:
        run_records = read_metrics(Path(run))
        if not run_records:
            raise ValueError(f"{run}: no metrics.jsonl records to plot")
        if records:
            boundaries.append((offset, Path(run).name))
        records.extend({**r, "step": r["step"] + offset} for r in run_records)
        offset += max(r["step"] for r in run_records)
    out_path = Path(out) if out else Path(run_dirs[-1]) / "plot.png"

    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    reward_ax, length_ax, clip_ax, signal_ax = axes.flat
    reward_ax.plot(*_series(records, "reward/mean"), label="all", linewidth=2.2, color="black")
    sources = sorted({k for r in records for k in r if k.startswith(_SOURCE_PREFIX)} - _NOT_SOURCES)
    if len(sources) > 1:
        for key in sources:
            label = key.removeprefix(_SOURCE_PREFIX)
            reward_ax.plot(*_series(records, key), label=label, alpha=0.8)
    held_steps, held = _series(records, "eval/reward/mean")
    if held:
        reward_ax.plot(held_steps, held, "o-", label="held-out", color="tab:red",
                       markersize=4, linewidth=1)
    reward_ax.plot(*_series(records, "format_reward/mean"), label="format (not in reward)",
                   linestyle="--", color="grey", alpha=0.8)
    reward_ax.set_title("reward (mean over scored responses)")
    reward_ax.legend(fontsize=8)

    length_ax.plot(*_series(records, "response_length/mean"), label="mean")
    length_ax.plot(*_series(records, "response_length/max"), label="max", alpha=0.6)
    length_ax.set_title("response length (tokens)")
    length_ax.legend(fontsize=8)

    clip_ax.plot(*_series(records, "clip_fraction"), label="clip fraction")
    clip_ax.plot(*_series(records, "approx_kl"), label="approx KL to rollout policy", alpha=0.7)
    # With one optimizer step per batch (the recipe) the ratio is 1 and nothing is clipped;
    # the gradient norm (right axis) shows what the updates do.
    norm_ax = clip_ax.twinx()
    norm_ax.plot(*_series(records, "grad_norm"), label="gradient norm (right)", color="tab:green",
                 alpha=0.7)
    norm_ax.set_ylim(bottom=0)
    clip_ax.set_title("clip fraction, approx KL; gradient norm")
    lines = clip_ax.get_lines() + norm_ax.get_lines()
    clip_ax.legend(lines, [line.get_label() for line in lines], fontsize=8)

    steps, zero = _series(records, "zero_signal_groups")
    _, groups = _series(records, "groups")
    signal_ax.plot(steps, [z / g if g else 0.0 for z, g in zip(zero, groups, strict=True)],
                   label="zero-signal groups")
    signal_ax.plot(*_series(records, "unscored"), label="unscored items", alpha=0.7)
    signal_ax.set_title("groups without signal (share), unscored items")
    signal_ax.legend(fontsize=8)

    for ax in axes.flat:
        for step, name in boundaries:
            ax.axvline(step, color="grey", linestyle="--", linewidth=1)
            ax.text(step, ax.get_ylim()[1], f" {name}", fontsize=8, va="top", color="grey")
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("step")
    fig.suptitle(" + ".join(Path(r).name for r in run_dirs))
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
