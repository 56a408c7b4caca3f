"""Stage configs: recipe defaults, YAML loading, and errors that say how to fix a value."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from trainer_client.config import (
    ConfigError,
    Stage1Config,
    Stage2Config,
    describe,
    load_config,
    start_model,
)


def test_defaults_are_the_recipe() -> None:
    config = Stage1Config(model="base", data=["rl.parquet"])
    assert (config.group_size, config.temperature, config.max_new_tokens) == (16, 1.0, 4096)
    assert (config.clip_low, config.clip_high, config.kl_coef) == (0.2, 0.28, 0.0)
    assert (config.lr, config.weight_decay, config.max_grad_norm) == (2e-6, 0.01, 1.0)
    assert (config.prompts_per_step, config.reward_bias, config.reward_scale) == (32, 0.5, 10.0)
    assert Stage2Config(data=["cot.parquet"]).normal_share == 0.1


def test_every_field_has_help() -> None:
    for cls in (Stage1Config, Stage2Config):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"
    assert "normal_share (default 0.1)" in describe(2)


def test_yaml_loading_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "stage1.yaml"
    # `2e-6` without a dot is a string to YAML 1.1; it is taken as the float it means
    path.write_text("stage: 1\nmodel: base\ndata: rl.jsonl\nlr: 1e-5\ngroup_size: 8\n")
    config = load_config(path, 1, overrides=["group_size=4", "reward_options={strict_tags: false}"])
    assert isinstance(config, Stage1Config)
    assert config.data == ["rl.jsonl"]  # a single file is a list of one
    assert config.lr == 1e-5 and config.group_size == 4
    assert config.reward_options == {"strict_tags": False}


def test_stage2_starts_from_the_stage1_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "stage2.yaml"
    path.write_text("init_from: runs/s1/final\ndata: [cot.jsonl]\nnormal_share: 0.25\n")
    config = load_config(path, 2)
    assert isinstance(config, Stage2Config)
    assert start_model(config) == "runs/s1/final" and config.normal_share == 0.25


@pytest.mark.parametrize(
    "text,stage,message",
    [
        ("model: m\ndata: d\nlearning_rate: 1\n", 1, "unknown key.*learning_rate.*known:.*lr"),
        ("model: m\ndata: d\nlr: fast\n", 1, "lr: expected"),  # wrong type names the field
        ("model: m\ndata: d\ngroup_size: 1\n", 1, "group_size must be at least 2"),
        ("data: d\n", 1, "model: set the base model"),
        ("model: m\ndata: d\ntemperature: 0\n", 1, "temperature must be > 0"),
        ("model: m\ndata: d\nrollout_engine: sglang\n", 1, "rollout_engine: expected"),
        ("model: m\ndata: d\n", 2, "stage 2 starts from init_from"),
        ("data: d\nnormal_share: 1.5\n", 2, "normal_share must be in"),
        ("stage: 2\ndata: d\n", 1, "is a stage-2 config"),
        ("- a\n- b\n", 1, "top level must be a mapping"),
        ("model: m\ndata: d\nprompts_per_step: 3\ngroup_size: 3\nmini_batches_per_step: 2\n", 1,
         "divide evenly"),
        ("model: m\ndata: d\nkeep: [worst]\n", 1, "keep must list"),
        ("model: m\ndata: d\nbehav_weight_cap: 1\n", 1, "behav_weight_cap must be > 1"),
        ("model: m\ndata: d\nbatch_adv_norm: tokenz\n", 1, "batch_adv_norm: expected"),
        ("model: m\ndata: d\nepochs: 0\n", 1, "epochs must be at least 1"),
        ("model: m\ndata: [d\n", 1, "not valid YAML"),
    ],
)
def test_bad_configs_say_how_to_fix(tmp_path: Path, text: str, stage: int, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, stage)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file .*none.yaml does not exist"):
        load_config(tmp_path / "none.yaml", 1)


def test_keep_takes_a_comma_list(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("model: m\ndata: d\n")
    assert load_config(path, 1, overrides=["keep=best,last"]).keep == ["best", "last"]


def test_override_without_equals_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("model: m\ndata: d\n")
    with pytest.raises(ConfigError, match="key=value"):
        load_config(path, 1, overrides=["lr"])


# The recipe's values (RECIPE.md and its AReaL stage configs: ppo_n_minibatches 1,
# dynamic_sampling false, adv_norm batch/batch, behav_imp_weight_cap 5, warmup 0.001,
# total_train_epochs 30).
RECIPE = {"group_size": 16, "prompts_per_step": 32, "max_new_tokens": 4096, "temperature": 1.0,
          "clip_low": 0.2, "clip_high": 0.28, "kl_coef": 0.0, "lr": 2e-6, "weight_decay": 0.01,
          "max_grad_norm": 1.0, "reward_bias": 0.5, "reward_scale": 10.0,
          "mini_batches_per_step": 1, "skip_zero_signal_groups": False,
          "batch_adv_norm": "tokens", "decoupled_loss": True, "behav_weight_cap": 5.0,
          "lr_warmup_proportion": 0.001, "adam_eps": 1e-8, "adam_betas": [0.9, 0.999],
          "epochs": 30, "trust_remote_code": True}


@pytest.mark.parametrize("stage", [1, 2])
def test_shipped_stage_configs_are_the_recipe(stage: int) -> None:
    root = Path(__file__).resolve().parents[2] / "configs"
    config = load_config(root / f"stage{stage}.yaml", stage)
    assert {key: getattr(config, key) for key in RECIPE} == RECIPE
    if stage == 2:
        assert isinstance(config, Stage2Config)
        assert config.init_from == "runs/stage1/best" and config.normal_share == 0.1
    assert config.keep == ["last", "best"] and config.eval_holdout > 0


@pytest.mark.parametrize("name,stage", [("tiny-stage1", 1), ("tiny-stage2", 2)])
def test_tiny_configs_load(name: str, stage: int) -> None:
    root = Path(__file__).resolve().parents[2] / "configs"
    config = load_config(root / f"{name}.yaml", stage)
    assert config.device == "cpu" and config.rollout_engine == "hf"
