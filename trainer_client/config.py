"""Training configuration: one dataclass per stage, loaded from YAML.

Defaults are the recipe's values (RECIPE.md, "Training recipe", and the recipe's own
AReaL configs): group size 16, temperature 1.0, up to 4096 new tokens, clip 0.2 / 0.28,
no KL, Adam lr 2e-6 (eps 1e-8) with weight decay 0.01, a constant learning rate after a
linear warm-up over 0.001 of the optimizer steps, gradient clipping 1.0, 32 prompts per
step and one optimizer step per batch, rewards shaped as `(r - 0.5) * 10`, group-normalized,
then normalized over the batch's tokens with zero-signal groups kept, and the decoupled
loss with behaviour importance weights capped at 5. `configs/stage1.yaml` and
`configs/stage2.yaml` spell them out (and 30 epochs); `configs/tiny-*.yaml` shrink them
for a CPU. docs/trainer.md has the table of every value, the recipe's and ours.

Every field carries `help` metadata (shown by `trainer-client train --help-config`);
`__post_init__` rejects values that cannot work and says how to fix them. A YAML key that
is not a field is an error naming the known keys, so a typo never silently falls back to
a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from trainer_client.errors import TrainerClientError


def _field(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


def _help(text: str) -> dict[str, str]:
    return {"help": text}


class ConfigError(TrainerClientError, ValueError):
    """A configuration value that cannot work; the message says how to fix it."""


@dataclass
class GRPOConfig:
    """What both stages share."""

    # -- model, data, output --
    model: str = _field("", "Policy to start from: a local folder or a Hugging Face hub id.")
    data: list[str] = field(
        default_factory=list, metadata=_help("Data files (parquet or JSONL), recipe row schema.")
    )
    output_dir: str = _field("runs/stage", "Where checkpoints, metrics.jsonl and TensorBoard go.")
    device: str | None = _field(None, "torch device; None picks cuda when available, else cpu.")
    trust_remote_code: bool = _field(
        False, "Allow the checkpoint's own modelling code (some VLMs on the hub need it)."
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = _field(
        "auto", "Weights' dtype; auto = bfloat16 on a GPU, float32 on the CPU."
    )
    attn_implementation: str | None = _field(
        None, "transformers attention kernel (e.g. sdpa, eager, flash_attention_2); "
        "None = the model's default."
    )
    seed: int = _field(0, "Seeds data order, sampling and initialisation.")
    # -- reward server --
    reward_url: str = _field("http://127.0.0.1:8000", "Base URL of the reward server.")
    reward_timeout_s: float = _field(300.0, "HTTP timeout of one /score request, seconds.")
    reward_batch_size: int = _field(512, "Items per /score request.")
    reward_retries: int = _field(5, "Retries of a failed /score request (with backoff).")
    reward_options: dict[str, Any] = field(default_factory=dict, metadata=_help(
        "Verifier options added to every item (e.g. {strict_tags: false})."
    ))
    # -- rollouts --
    rollout_engine: Literal["hf", "vllm"] = _field(
        "hf", "hf: transformers generate (CPU or GPU); vllm: colocated vLLM (GPU, extra 'vllm')."
    )
    engine_options: dict[str, Any] = field(default_factory=dict, metadata=_help(
        "Keyword arguments of the rollout engine (e.g. gpu_memory_utilization for vllm)."
    ))
    group_size: int = _field(16, "Responses sampled per prompt (the GRPO group).")
    prompts_per_step: int = _field(32, "Prompts per optimizer step (the batch).")
    max_new_tokens: int = _field(4096, "Longest response sampled.")
    temperature: float = _field(1.0, "Sampling temperature of rollouts.")
    top_p: float = _field(1.0, "Nucleus sampling of rollouts.")
    # -- GRPO --
    reward_bias: float = _field(0.5, "Reward shaping: (reward - bias) * scale before advantages.")
    reward_scale: float = _field(10.0, "Reward shaping scale (see reward_bias).")
    clip_low: float = _field(0.2, "Lower ratio clip: ratios below 1 - clip_low are clipped.")
    clip_high: float = _field(0.28, "Upper ratio clip: ratios above 1 + clip_high are clipped.")
    kl_coef: float = _field(0.0, "Weight of the KL to a frozen copy of the start policy; 0 = off.")
    skip_zero_signal_groups: bool = _field(
        False, "Leave groups whose rewards are all equal out of the update and of the batch "
        "normalization; the recipe keeps them (dynamic_sampling: false)."
    )
    batch_adv_norm: Literal["tokens", "samples", "none"] = _field(
        "tokens", "Batch normalization of the group advantages: tokens = the recipe's "
        "(mean/std over every completion token of the batch, zero-signal groups included); "
        "samples = one value per informative sample; none = group normalization only."
    )
    decoupled_loss: bool = _field(
        True, "When the rollout engine reports its sampler's log-probs (vllm), weight each "
        "token by exp(old - behaviour) as the recipe's decoupled loss does."
    )
    behav_weight_cap: float | None = _field(
        5.0, "Tokens whose behaviour importance weight exceeds this are left out of the loss; "
        "null = no cap."
    )
    mini_batches_per_step: int = _field(
        1, "Optimizer steps per rollout batch; >1 makes the ratio clip matter (old log-probs "
        "are recomputed once before the first)."
    )
    micro_batch_size: int = _field(
        4, "Sequences per forward/backward pass (gradients accumulate over them)."
    )
    # -- optimizer --
    lr: float = _field(2e-6, "AdamW learning rate (constant after the warm-up).")
    lr_warmup_proportion: float = _field(
        0.001, "Share of all optimizer steps spent warming the lr up linearly from 0."
    )
    weight_decay: float = _field(0.01, "AdamW weight decay.")
    adam_betas: list[float] = field(
        default_factory=lambda: [0.9, 0.999], metadata=_help("AdamW betas.")
    )
    adam_eps: float = _field(1e-8, "AdamW epsilon.")
    max_grad_norm: float = _field(
        1.0, "Gradient clipping by global norm; a step whose norm is not finite is skipped."
    )
    # -- schedule, evaluation, checkpoints --
    epochs: int = _field(1, "Passes over the training rows (when total_steps is null).")
    total_steps: int | None = _field(
        None, "Rollout batches to run; null = `epochs` passes over the data."
    )
    eval_data: list[str] = field(default_factory=list, metadata=_help(
        "Held-out rows (parquet or JSONL) scored during training; empty = hold out "
        "`eval_holdout` rows of `data`."
    ))
    eval_holdout: int = _field(
        0, "Rows of the stage's training rows held out for evaluation when eval_data is empty."
    )
    eval_every: int = _field(50, "Evaluate on the held-out rows every N steps (and at the end).")
    eval_max_new_tokens: int | None = _field(
        None, "Longest response during evaluation; null = max_new_tokens."
    )
    eval_samples: int = _field(1, "Responses per held-out row (their mean reward is scored).")
    eval_temperature: float = _field(
        0.0, "Sampling temperature of the held-out responses; 0 = greedy (seeded otherwise)."
    )
    keep: list[Literal["last", "best"]] = field(
        default_factory=lambda: ["last", "best"], metadata=_help(
            "Checkpoints kept beside the step ones: last = RUN/final, best = RUN/best "
            "(highest held-out reward; needs held-out rows)."
        )
    )
    save_every: int = _field(50, "Save a checkpoint every N steps (and always at the end).")
    keep_checkpoints: int = _field(2, "Step checkpoints kept on disk (final and best are extra).")
    sft_warmup_steps: int = _field(
        0, "Supervised steps on '<answer>GOLD</answer>' before GRPO, teaching a tiny model the "
        "format; 0 = off (the recipe starts from an instruction-tuned model)."
    )
    sft_warmup_lr: float = _field(1e-3, "Learning rate of the supervised warm-up.")
    sft_warmup_data: list[str] = field(default_factory=list, metadata=_help(
        "Rows for the warm-up (their golds are the targets); empty = the stage's own rows."
    ))
    log_tensorboard: bool = _field(True, "Also write TensorBoard events when it is installed.")

    stage: typing.ClassVar[int] = 0

    def __post_init__(self) -> None:
        positive = ("group_size", "prompts_per_step", "max_new_tokens", "micro_batch_size",
                    "mini_batches_per_step", "save_every", "reward_batch_size", "epochs",
                    "eval_every", "eval_samples")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.group_size < 2:
            raise ConfigError("group_size must be at least 2: GRPO compares responses in a group")
        if isinstance(self.data, str):
            self.data = [self.data]
        if isinstance(self.sft_warmup_data, str):
            self.sft_warmup_data = [self.sft_warmup_data]
        if isinstance(self.eval_data, str):
            self.eval_data = [self.eval_data]
        if isinstance(self.keep, str):
            self.keep = [part.strip() for part in self.keep.split(",")]  # type: ignore[misc]
        if not self.keep or set(self.keep) - {"last", "best"}:
            raise ConfigError(f"keep must list 'last' and/or 'best', got {self.keep!r}")
        if self.eval_temperature < 0:
            raise ConfigError("eval_temperature must be >= 0 (0 = greedy)")
        if self.eval_holdout < 0:
            raise ConfigError("eval_holdout must be >= 0 (rows held out for evaluation)")
        if not 0 <= self.lr_warmup_proportion < 1:
            raise ConfigError("lr_warmup_proportion must be in [0, 1) (recipe: 0.001)")
        if self.behav_weight_cap is not None and self.behav_weight_cap <= 1:
            raise ConfigError("behav_weight_cap must be > 1 (recipe: 5), or null for no cap")
        if self.temperature <= 0:
            raise ConfigError("temperature must be > 0 for GRPO sampling (1.0 in the recipe)")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if not (0 <= self.clip_low < 1 and self.clip_high >= 0):
            raise ConfigError("clip_low must be in [0, 1) and clip_high >= 0 (recipe: 0.2 / 0.28)")
        if self.kl_coef < 0 or self.lr <= 0 or self.weight_decay < 0 or self.max_grad_norm <= 0:
            raise ConfigError("kl_coef, weight_decay must be >= 0; lr, max_grad_norm > 0")
        if self.reward_scale == 0:
            raise ConfigError("reward_scale of 0 removes every advantage; the recipe uses 10")
        if self.total_steps is not None and self.total_steps < 1:
            raise ConfigError("total_steps must be >= 1, or null for `epochs` passes")
        if len(self.adam_betas) != 2:
            raise ConfigError("adam_betas is a pair, e.g. [0.9, 0.999]")
        if self.keep_checkpoints < 1:
            raise ConfigError("keep_checkpoints must be >= 1 so --resume has something to load")
        if (self.prompts_per_step * self.group_size) % self.mini_batches_per_step:
            raise ConfigError(
                "prompts_per_step * group_size must divide evenly into mini_batches_per_step"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Stage1Config(GRPOConfig):
    """Stage 1: answer-only RL on the `prompt_type == normal` rows."""

    output_dir: str = _field("runs/stage1", "Where checkpoints, metrics.jsonl and TensorBoard go.")
    stage: typing.ClassVar[int] = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.model:
            raise ConfigError("model: set the base model (a local folder or a hub id)")
        if not self.data:
            raise ConfigError("data: list at least one parquet or JSONL file")


@dataclass
class Stage2Config(GRPOConfig):
    """Stage 2: chain-of-thought RL from the stage-1 checkpoint, with answer-only rows mixed in."""

    output_dir: str = _field("runs/stage2", "Where checkpoints, metrics.jsonl and TensorBoard go.")
    init_from: str = _field(
        "runs/stage1/best", "Stage-1 checkpoint folder to start from: its `best` (highest "
        "held-out reward) or `final` (last step)."
    )
    normal_data: list[str] = field(default_factory=list, metadata=_help(
        "Files of answer-only rows to mix in; empty = the answer-only rows of `data`."
    ))
    normal_share: float = _field(
        0.1, "Share of each batch's prompts drawn from answer-only rows (keeps perception)."
    )
    stage: typing.ClassVar[int] = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.normal_data, str):
            self.normal_data = [self.normal_data]
        if self.model:
            raise ConfigError(
                "model: stage 2 starts from init_from (the stage-1 checkpoint); remove `model`"
            )
        if not self.init_from:
            raise ConfigError("init_from: set the stage-1 checkpoint (RUN/best or RUN/final)")
        if not self.data:
            raise ConfigError("data: list at least one parquet or JSONL file")
        if not 0 <= self.normal_share < 1:
            raise ConfigError(f"normal_share must be in [0, 1), got {self.normal_share}")


StageConfig = Stage1Config | Stage2Config
STAGES: dict[int, type[GRPOConfig]] = {1: Stage1Config, 2: Stage2Config}


def start_model(config: GRPOConfig) -> str:
    """The policy a stage loads: the base model (stage 1) or the stage-1 checkpoint."""
    return config.init_from if isinstance(config, Stage2Config) else config.model


def config_from_dict(stage: int, values: dict[str, Any]) -> GRPOConfig:
    """A stage config from a mapping; unknown keys are an error naming the known ones."""
    if stage not in STAGES:
        raise ConfigError(f"stage must be one of {sorted(STAGES)}, got {stage}")
    cls = STAGES[stage]
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(unknown)} for stage {stage}; "
            f"known: {', '.join(sorted(known))}"
        )
    values = {name: _coerce(name, value) for name, value in values.items()}
    for name, value in values.items():
        _check_type(name, value, known[name].type)
    return cls(**values)


def _coerce(name: str, value: Any) -> Any:
    """YAML 1.1 reads `2e-6` (no dot) as a string; take it as the float it was meant as."""
    if isinstance(value, str) and _resolved_hint(name, None) in (float, float | None):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_config(path: str | Path, stage: int, overrides: list[str] | None = None) -> GRPOConfig:
    """A stage config from a YAML file, with optional `key=value` overrides (YAML values)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist",
                          "see configs/*.yaml for the shipped ones")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys")
    file_stage = raw.pop("stage", stage)
    if file_stage != stage:
        raise ConfigError(f"{path} is a stage-{file_stage} config, but --stage {stage} was given")
    for override in overrides or []:
        key, sep, value = override.partition("=")
        if not sep:
            raise ConfigError(f"override {override!r} must look like key=value")
        try:
            raw[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {override!r}: the value is not YAML ({exc})") from None
    return config_from_dict(stage, raw)


def describe(stage: int) -> str:
    """The stage's fields with defaults and help, one per line (for --help-config)."""
    lines = []
    for f in dataclasses.fields(STAGES[stage]):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        lines.append(f"{f.name} (default {default!r}): {f.metadata.get('help', '')}")
    return "\n".join(lines)


_HINTS: dict[type, dict[str, Any]] = {}


def _check_type(name: str, value: Any, annotation: Any) -> None:
    """Reject a YAML value of the wrong kind (e.g. `lr: "fast"`) with the field's name."""
    hint = _resolved_hint(name, annotation)
    if not _matches(value, hint):
        raise ConfigError(f"{name}: expected {hint}, got {value!r}")


def _resolved_hint(name: str, annotation: Any) -> Any:
    if annotation is None or isinstance(annotation, str):
        for cls in STAGES.values():
            hints = _HINTS.setdefault(cls, typing.get_type_hints(cls))
            if name in hints:
                return hints[name]
    return annotation


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin is list:
        return isinstance(value, list | str)  # a single string is accepted as a list of one
    if origin is dict:
        return isinstance(value, dict)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)
