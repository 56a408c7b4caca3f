"""`trainer-client` subcommands, run as a user would (against the real reward server)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trainer_client.cli import main
from trainer_client.metrics import read_metrics

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_help_config_lists_keys_with_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--stage", "2", "--help-config"]) == 0
    out = capsys.readouterr().out
    assert "normal_share (default 0.1)" in out and "clip_high (default 0.28)" in out


def test_console_entry_point_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "trainer_client.cli", "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True)
    for command in ("curate", "train", "eval", "plot", "warmup"):
        assert command in done.stdout


def test_warmup_curate_train_eval_plot(
    reward_server: str, tiny_text_model: Path, demo_data: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    warm = tmp_path / "warm"
    assert main(["warmup", "--model", str(tiny_text_model), "--data", str(demo_data["warmup"]),
                 "--out", str(warm), "--steps", "3"]) == 0
    assert (warm / "config.json").is_file()

    curated = tmp_path / "curated.jsonl"
    assert main(["curate", "--model", str(warm), "--data", str(demo_data["pool"]),
                 "--out", str(curated), "--samples", "2", "--max-new-tokens", "4",
                 "--reward-url", reward_server, "--source-window", "digits=-1,2"]) == 0
    out = capsys.readouterr().out
    assert "rows read 64, kept 64" in out and "mean reward histogram" in out
    rows = [json.loads(line) for line in curated.read_text().splitlines()]
    assert len(rows) == 64  # the source window (-1, 2) keeps every row
    assert {"mean_reward", "pass_at_1", "pass_at_n", "num_samples"} <= set(rows[0])

    run = tmp_path / "run"
    assert main(["train", "--stage", "1", "--config", str(REPO_ROOT / "configs/tiny-stage1.yaml"),
                 "--set", f"model={warm}", "--set", f"data=[{curated}]",
                 "--set", f"output_dir={run}", "--set", f"reward_url={reward_server}",
                 "--set", "total_steps=2", "--set", "prompts_per_step=2"]) == 0
    assert f"final checkpoint: {run / 'final'}" in capsys.readouterr().out
    assert len(read_metrics(run)) == 2

    results = tmp_path / "eval.json"
    assert main(["eval", "--model", str(run / "final"), "--data", str(demo_data["stage1"]),
                 "--reward-url", reward_server, "--max-new-tokens", "4",
                 "--out", str(results)]) == 0
    table = capsys.readouterr().out
    assert "mean reward" in table and "digits" in table
    numbers = json.loads(results.read_text())
    assert numbers["all"]["rows"] == 64 and 0.0 <= numbers["digits"]["pass_at_1"] <= 1.0

    assert main(["plot", str(run)]) == 0
    assert (run / "plot.png").stat().st_size > 10_000


def test_bad_arguments_fail_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--config FILE is required"):
        main(["train", "--stage", "1"])
    config = tmp_path / "c.yaml"
    config.write_text("model: m\ndata: d\nlearning_rate: 1\n")
    with pytest.raises(ValueError, match="unknown key"):
        main(["train", "--stage", "1", "--config", str(config)])
