"""The run plot: a real PNG with every panel's data, stages drawn one after the other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from trainer_client.plot import plot_runs


def write_run(folder: Path, steps: int, start_reward: float, eval_every: int = 0) -> Path:
    folder.mkdir(parents=True)
    with (folder / "metrics.jsonl").open("w") as handle:
        for step in range(1, steps + 1):
            held = {"eval/reward/mean": 0.3} if eval_every and step % eval_every == 0 else {}
            handle.write(json.dumps({
                **held,
                "step": step, "reward/mean": start_reward + 0.05 * step,
                "reward/std": 0.1, "reward/pixmo": 0.2 + 0.01 * step, "reward/ai2d": 0.5,
                "response_length/mean": 10 + step, "response_length/max": 20 + step,
                "clip_fraction": 0.01 * step, "approx_kl": 0.001,
                "zero_signal_groups": 1.0, "groups": 4.0, "unscored": 0.0,
            }) + "\n")
    return folder


def test_plot_writes_a_png(tmp_path: Path) -> None:
    run = write_run(tmp_path / "stage1", 6, 0.1)
    out = plot_runs([run])
    assert out == run / "plot.png"
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (1200, 800)
        # a blank figure would be one colour; drawn lines give many
        assert len(image.convert("RGB").getcolors(maxcolors=1_000_000) or []) > 50


HELD_OUT_RED = (214, 39, 40)  # matplotlib's tab:red, the held-out series


def red_pixels(path: Path) -> int:
    with Image.open(path) as image:
        return sum(count for count, colour in image.convert("RGB").getcolors(1_000_000) or []
                   if colour == HELD_OUT_RED)


def test_held_out_reward_is_drawn_where_evaluated(tmp_path: Path) -> None:
    plain = plot_runs([write_run(tmp_path / "plain", 6, 0.1)])
    held = plot_runs([write_run(tmp_path / "held", 6, 0.1, eval_every=2)])
    assert red_pixels(plain) == 0 and red_pixels(held) > 100


def test_two_stages_on_one_axis(tmp_path: Path) -> None:
    first = write_run(tmp_path / "stage1", 4, 0.1)
    second = write_run(tmp_path / "stage2", 3, 0.3)
    out = plot_runs([first, second], tmp_path / "both.png")
    assert out.is_file() and out.stat().st_size > 10_000


def test_a_run_without_metrics_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no metrics"):
        plot_runs([tmp_path / "empty"])
