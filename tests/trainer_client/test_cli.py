"""`trainer-client` subcommands, run as a user would (against the real reward server)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from trainer_client.cli import build_parser, main
from trainer_client.metrics import read_metrics

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_FLAGS = ["--device", "cpu", "--dtype", "float32", "--attn-implementation", "eager",
               "--no-trust-remote-code"]


def test_help_config_lists_keys_with_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--stage", "2", "--help-config"]) == 0
    out = capsys.readouterr().out
    assert "normal_share (default 0.1)" in out and "clip_high (default 0.28)" in out


def test_console_entry_point_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "trainer_client.cli", "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True)
    for command in ("curate", "train", "eval", "plot", "warmup"):
        assert command in done.stdout
    version = subprocess.run([sys.executable, "-m", "trainer_client.cli", "--version"],
                             cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert version.stdout.startswith("trainer-client 0.")


@pytest.mark.parametrize("command", ["curate", "eval", "train", "warmup"])
def test_help_shows_defaults(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "(default:" in out and "--trust-remote-code" in out and "--attn-implementation" in out


@pytest.mark.parametrize("command", ["curate", "eval", "warmup"])
def test_every_model_verb_takes_the_model_loading_knobs(command: str) -> None:
    args = build_parser().parse_args(
        [command, "--model", "m", "--data", "d.jsonl", "--out", "o", "--trust-remote-code",
         "--dtype", "bfloat16", "--attn-implementation", "sdpa", "--device", "cuda:1"]
        if command != "eval" else
        [command, "--model", "m", "--data", "d.jsonl", "--trust-remote-code",
         "--dtype", "bfloat16", "--attn-implementation", "sdpa", "--device", "cuda:1"]
    )
    assert (args.trust_remote_code, args.dtype, args.attn_implementation, args.device) == (
        True, "bfloat16", "sdpa", "cuda:1")


def test_train_flags_override_the_config(tmp_path: Path) -> None:
    from trainer_client.cli import _train_overrides
    from trainer_client.config import load_config

    args = build_parser().parse_args(
        ["train", "--stage", "2", "--config", "configs/stage2.yaml", "--init-from",
         "runs/stage1/final", "--keep", "last", "--no-trust-remote-code", "--dtype", "float16",
         "--attn-implementation", "eager", "--device", "cpu", "--set", "lr=1e-6"]
    )
    config = load_config(REPO_ROOT / "configs/stage2.yaml", 2, overrides=_train_overrides(args))
    assert config.init_from == "runs/stage1/final" and config.keep == ["last"]
    assert (config.trust_remote_code, config.dtype, config.attn_implementation, config.device) \
        == (False, "float16", "eager", "cpu")
    assert config.lr == 1e-6
    plain = build_parser().parse_args(["train", "--stage", "2", "--config", "c.yaml"])
    assert _train_overrides(plain) == []  # nothing given: the config's values stand


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trainer_client.cli", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    """What the user is told: stderr from the `trainer-client VERB: error:` line on (log
    lines and progress bars come before it)."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("trainer-client ")]
    return lines[starts[-1]:] if starts else lines


def assert_short_failure(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    lines = error_lines(done)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert lines and ": error: " in lines[0], done.stderr
    assert len(lines) <= 2, lines  # what happened, and what to do
    for needle in needles:
        assert needle in "\n".join(lines), lines


def test_server_down_is_two_lines_and_debug_shows_the_traceback(
    tiny_text_model: Path, demo_data: dict[str, Path]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    args = ["eval", "--model", str(tiny_text_model), "--data", str(demo_data["stage1"]),
            "--reward-url", url, "--reward-retries", "0"]
    done = run_cli(*args)
    assert_short_failure(done, "reward server did not answer", "reward-server serve")
    debug = run_cli("--debug", *args)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_missing_model_folder_is_named(reward_server: str, demo_data: dict[str, Path],
                                       tmp_path: Path) -> None:
    done = run_cli("eval", "--model", str(tmp_path / "no-such-model"), "--data",
                   str(demo_data["stage1"]), "--reward-url", reward_server, *MODEL_FLAGS)
    assert_short_failure(done, f"model folder {tmp_path / 'no-such-model'} does not exist")


def test_missing_and_empty_data_files(reward_server: str, tiny_text_model: Path,
                                      tmp_path: Path) -> None:
    missing = run_cli("eval", "--model", str(tiny_text_model), "--data",
                      str(tmp_path / "nope.jsonl"), "--reward-url", reward_server)
    assert_short_failure(missing, f"data file {tmp_path / 'nope.jsonl'} does not exist")
    empty = tmp_path / "curated.jsonl"
    empty.write_text("")
    done = run_cli("train", "--stage", "1", "--config", "configs/tiny-stage1.yaml",
                   "--set", f"model={tiny_text_model}", "--set", f"data=[{empty}]",
                   "--set", f"output_dir={tmp_path / 'run'}",
                   "--set", f"reward_url={reward_server}")
    assert_short_failure(done, "no usable row", "curate")


def test_curate_keeping_nothing_fails(reward_server: str, tiny_text_model: Path,
                                      demo_data: dict[str, Path], tmp_path: Path) -> None:
    # A random model never answers in the tags: every row is never solved.
    out = tmp_path / "kept.jsonl"
    done = run_cli("curate", "--model", str(tiny_text_model), "--data", str(demo_data["heldout"]),
                   "--out", str(out), "--samples", "2", "--max-new-tokens", "3",
                   "--reward-url", reward_server, *MODEL_FLAGS)
    assert_short_failure(done, "curate kept 0 of 16 rows", "--window")
    assert "never solved" in done.stdout  # the summary still says why
    assert not out.exists()


def test_warmup_curate_train_eval_plot(
    reward_server: str, tiny_text_model: Path, demo_data: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    warm = tmp_path / "warm"
    assert main(["warmup", "--model", str(tiny_text_model), "--data", str(demo_data["warmup"]),
                 "--out", str(warm), "--steps", "3", *MODEL_FLAGS]) == 0
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
                 "--set", "total_steps=2", "--set", "prompts_per_step=2",
                 "--set", f"eval_data=[{demo_data['heldout']}]", *MODEL_FLAGS]) == 0
    out = capsys.readouterr().out
    assert f"last checkpoint: {run / 'final'}" in out
    assert f"best checkpoint: {run / 'best'} (held-out reward" in out
    assert len(read_metrics(run)) == 2

    results = tmp_path / "eval.json"
    assert main(["eval", "--model", str(run / "best"), "--data", str(demo_data["stage1"]),
                 "--reward-url", reward_server, "--max-new-tokens", "4",
                 "--out", str(results), *MODEL_FLAGS]) == 0
    table = capsys.readouterr().out
    assert "mean reward" in table and "digits" in table
    numbers = json.loads(results.read_text())
    assert numbers["all"]["rows"] == 64 and 0.0 <= numbers["digits"]["pass_at_1"] <= 1.0

    assert main(["plot", str(run)]) == 0
    assert (run / "plot.png").stat().st_size > 10_000


def test_bad_arguments_fail_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--stage", "1"]) == 1
    assert "--config FILE is required" in capsys.readouterr().err
    config = tmp_path / "c.yaml"
    config.write_text("model: m\ndata: d\nlearning_rate: 1\n")
    assert main(["train", "--stage", "1", "--config", str(config)]) == 1
    assert "unknown key(s) learning_rate" in capsys.readouterr().err
    assert main(["train", "--stage", "1", "--config", str(tmp_path / "none.yaml")]) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown key"):  # --debug: the exception itself
        main(["--debug", "train", "--stage", "1", "--config", str(config)])


def documented_commands() -> list[list[str]]:
    """The `trainer-client ...` lines of docs/trainer.md's real-recipe block, as argv."""
    import re
    import shlex

    text = (REPO_ROOT / "docs" / "trainer.md").read_text()
    block = text.split("### The real recipe on GPUs", 1)[1].split("```bash", 1)[1]
    block = block.split("```", 1)[0].replace("\\\n", " ")
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines()]
    return [shlex.split(line.replace("$R", "http://reward-host:8000"))[1:]
            for line in lines if line.startswith("trainer-client ")]


def test_documented_recipe_commands_parse_and_their_configs_load() -> None:
    from trainer_client.cli import _train_overrides
    from trainer_client.config import load_config

    commands = documented_commands()
    assert [argv[0] for argv in commands] == ["curate", "train", "train", "eval", "plot"]
    for argv in commands:
        args = build_parser().parse_args(argv)  # a typo in the docs would exit here
        if args.command == "train":
            config = load_config(REPO_ROOT / args.config, args.stage,
                                 overrides=_train_overrides(args))
            assert config.reward_url == "http://reward-host:8000"
            assert config.trust_remote_code  # the recipe's checkpoint needs it
        if args.command in ("curate", "eval"):
            assert args.trust_remote_code and args.engine == "vllm"
