"""GRPO training: one stage of the recipe's two-stage curriculum.

One step (RECIPE.md, "Training recipe", and the recipe's AReaL configs; every formula is
a pure function in `grpo`):

1. Draw `prompts_per_step` rows (`curriculum.BatchSampler`; stage 2 mixes in a share of
   answer-only rows) and build each prompt with the recipe's instruction, system message
   and the model's chat template/processor.
2. Sample `group_size` responses per prompt with the rollout engine (`hf` or `vllm`).
3. Score every response through the reward server (`POST /score`). Items it could not
   judge (status `timeout`/`error`, a fault of the service) are logged and marked
   invalid: they take no part in any mean or std and get no gradient; they are never
   read as reward 0. Items the service `rejected` (the response made verification fail)
   are scored wrong: reward 0, like any other wrong answer.
4. Shape rewards `(r - bias) * scale` (0.5, 10), normalize per group (mean/std over the
   group's valid items), then over the batch (`batch_adv_norm`): by default the recipe's
   token-weighted form, every completion token of the batch counting once, zero-signal
   groups included.
5. Groups whose valid rewards are all equal carry no signal of their own; they are counted
   (`zero_signal_groups`) and, as in the recipe, kept (`skip_zero_signal_groups: false`):
   their tokens stay in the loss's denominator.
6. Update with the token-level clipped loss (clip 0.2 / 0.28, sum over every valid token
   divided by their number), micro-batches accumulating gradients, gradient clipping and
   AdamW under a constant learning rate after a linear warm-up (0.001 of all optimizer
   steps). A step whose gradient norm is not finite is skipped (counted in
   `skipped_optimizer_steps`). The batch may be split into `mini_batches_per_step`
   optimizer steps (the recipe takes 1). "Old" (proximal) log-probs are recomputed by the
   training model in `eval()` mode before the first one whenever they can differ from
   the loss's own forward pass: several mini-batches, an engine that reports its
   sampler's log-probs (vLLM: different numerics), or a model with active dropout.
   Otherwise the detached log-probs of the loss's own forward pass are exactly those old
   log-probs and the extra forward pass is skipped. With the sampler's log-probs, each
   token is weighted by the behaviour importance weight `exp(old - behaviour)`, tokens
   over `behav_weight_cap` (5) left out: the recipe's decoupled loss.
7. Push the new weights to the rollout engine; log metrics; checkpoint every N steps.
   Every `eval_every` steps and at the end the model answers the held-out rows (greedy
   unless `eval_temperature` is set, with a fixed seed); their mean reward goes into the
   step's metrics (`eval/...`), and the best so far is kept as RUN/best (`keep`).

An optional supervised warm-up (`sft_warmup_steps`) teaches a tiny randomly initialised
model the `<answer>...</answer>` format before GRPO; the real recipe starts from an
instruction-tuned model and leaves it off.

Runs are deterministic on the CPU for a fixed seed: data order, rollouts (a per-step
sampling seed) and initialisation are all seeded, so the same config gives the same curve.
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from reward_client import RewardClient, is_scored
from trainer_client import grpo
from trainer_client.checkpoint import (
    BEST,
    FINAL,
    latest_checkpoint,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from trainer_client.config import GRPOConfig, Stage2Config, start_model
from trainer_client.curriculum import BatchSampler, stage_rows
from trainer_client.data import Row, load_rows
from trainer_client.errors import DataError, ModelLoadError
from trainer_client.evaluate import SamplingOptions, per_source, score_rows
from trainer_client.metrics import MetricsWriter, reward_metrics, reward_of
from trainer_client.policy import Policy, Sample, load_policy
from trainer_client.rollout import Rollout, RolloutEngine, build_prompts, make_engine

log = logging.getLogger(__name__)


def reward_client_for(config: GRPOConfig) -> RewardClient:
    return RewardClient(
        config.reward_url,
        timeout_s=config.reward_timeout_s,
        batch_size=config.reward_batch_size,
        retries=config.reward_retries,
    )


def load_config_policy(config: GRPOConfig, name_or_path: str | Path) -> Policy:
    """`load_policy` with the config's model-loading knobs."""
    return load_policy(
        name_or_path,
        config.device,
        trust_remote_code=config.trust_remote_code,
        dtype=config.dtype,
        attn_implementation=config.attn_implementation,
    )


def warmup_target(row: Row) -> str:
    """The layout the row's prompt asks for, with the gold as the answer."""
    answer = f"<answer>{row.first_answer}</answer>"
    return answer if row.answer_only else f"<think></think>{answer}"


def supervised_warmup(
    policy: Policy, rows: Sequence[Row], steps: int, lr: float, batch_size: int, seed: int
) -> list[float]:
    """Teach the response format by maximum likelihood of `warmup_target`; returns losses.

    Uses its own AdamW (discarded afterwards) so GRPO starts with fresh optimizer state.
    """
    eos = policy.tokenizer.eos_token_id
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=lr)
    sampler = BatchSampler(list(rows), batch_size, seed)
    losses = []
    policy.model.train()
    for _ in tqdm(range(steps), desc="format warm-up", leave=False):
        batch = sampler.next_batch()
        prompts = build_prompts(policy, batch)
        samples = []
        for prompt, row in zip(prompts, batch, strict=True):
            ids = policy.tokenizer(warmup_target(row), add_special_tokens=False)["input_ids"]
            samples.append(Sample(prompt, torch.tensor([*ids, eos], dtype=torch.long)))
        logp, mask, _ = policy.sequence_logprobs(samples)
        mask = mask.to(logp.dtype)
        loss = -(logp * mask).sum() / mask.sum().clamp(min=1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    if losses:
        log.info("format warm-up: loss %.3f -> %.3f", losses[0], losses[-1])
    return losses


def score_items(
    rows: Sequence[Row],
    rollouts: Sequence[Rollout],
    group_size: int,
    reward_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """`/score` items of a step's rollouts, ids `ROW#k`; a row's own options win over the
    run-wide `reward_options`."""
    items = []
    for k, rollout in enumerate(rollouts):
        row = rows[rollout.prompt_index]
        item = row.score_item(rollout.text, item_id=f"{row.id}#{k % group_size}")
        if reward_options:
            item["options"] = {**reward_options, **item.get("options", {})}
        items.append(item)
    return items


@dataclass
class StepBatch:
    """What one GRPO update trains on."""

    samples: list[Sample]
    advantages: torch.Tensor  # [len(samples)], batch-normalized
    # The sampler's log-probs of each sample's tokens (vLLM), None where not reported.
    behav_logprobs: list[torch.Tensor | None] | None = None


def group_advantages(
    config: GRPOConfig, rewards: torch.Tensor, valid: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(advantages, train mask, zero-signal groups) of one batch's rewards.

    `rewards` are per rollout in group order, `valid` marks scored ones, `lengths` the
    completion token counts. Samples outside the train mask (unscored, empty, or in a
    skipped zero-signal group) get advantage 0 and no gradient.
    """
    g = config.group_size
    shaped = grpo.shape_rewards(rewards, config.reward_bias, config.reward_scale)
    group_adv = grpo.group_normalize(shaped, g, valid=valid)
    zero = grpo.zero_signal_groups(rewards, g, valid=valid)
    zero_samples = zero.repeat_interleave(g)
    # An empty completion has no token to carry a gradient.
    train = valid & (lengths > 0)
    if config.skip_zero_signal_groups:
        train &= ~zero_samples
    if config.batch_adv_norm == "tokens":
        advantages = grpo.token_batch_normalize(group_adv, lengths, mask=train)
    elif config.batch_adv_norm == "samples":
        advantages = grpo.batch_normalize(group_adv, mask=train & ~zero_samples)
    else:
        advantages = torch.where(train, group_adv, torch.zeros_like(group_adv))
    return advantages, train, zero


def has_active_dropout(model: torch.nn.Module) -> bool:
    """Whether train() and eval() forward passes differ (any dropout with p > 0)."""
    config = getattr(model, "config", None)
    for name in ("attention_dropout", "hidden_dropout", "dropout"):
        value = getattr(config, name, 0.0)
        if isinstance(value, int | float) and value > 0:
            return True
    return any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())


class GRPOTrainer:
    def __init__(
        self,
        config: GRPOConfig,
        policy: Policy,
        engine: RolloutEngine,
        client: RewardClient,
        ref_policy: Policy | None = None,
        total_steps: int = 1,
    ) -> None:
        self.config = config
        self.policy = policy
        self.engine = engine
        self.client = client
        self.ref_policy = ref_policy
        self.optimizer = torch.optim.AdamW(
            policy.model.parameters(),
            lr=config.lr,
            betas=(config.adam_betas[0], config.adam_betas[1]),
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
        )
        # Optimizer steps, not rollout batches: each batch takes mini_batches_per_step.
        self.warmup = grpo.warmup_steps(
            total_steps * config.mini_batches_per_step, config.lr_warmup_proportion
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: grpo.warmup_factor(step, self.warmup)
        )
        self.best_eval: float | None = None
        self.best_step: int | None = None
        self.phase = ""
        self.last_reward: float | None = None

    # -- one step --

    def step(self, rows: Sequence[Row], step: int, bar: Any = None) -> dict[str, Any]:
        config = self.config
        t0 = time.perf_counter()
        prompts = build_prompts(self.policy, rows)
        self._show(bar, "rollouts")
        rollouts = self.engine.generate(
            prompts,
            config.group_size,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            # A per-step seed: the same weights and step give the same rollouts (resume).
            seed=config.seed * 1_000_003 + step,
        )
        t1 = time.perf_counter()
        items = score_items(rows, rollouts, config.group_size, config.reward_options)
        self._show(bar, f"scoring {len(items)} items")
        results = self.client.score(items)
        t2 = time.perf_counter()

        batch, advantage_stats = self.advantages(rollouts, results)
        self._show(bar, "update")
        lr = self.optimizer.param_groups[0]["lr"]
        update_stats = self.update(batch)
        self.engine.sync_weights(self.policy)
        t3 = time.perf_counter()

        lengths = [len(r.completion_ids) for r in rollouts]
        sources = [rows[r.prompt_index].source for r in rollouts]
        truncated = sum(r.finish_reason == "length" for r in rollouts)
        answer_only = sum(row.answer_only for row in rows)
        rewards = reward_metrics(results, sources)
        self.last_reward = rewards["reward/mean"]
        return {
            "step": step + 1,
            **rewards,
            "response_length/mean": sum(lengths) / len(lengths),
            "response_length/max": max(lengths),
            "truncated_fraction": truncated / len(rollouts),
            "prompts/answer_only": answer_only,
            "prompts/chain_of_thought": len(rows) - answer_only,
            **advantage_stats,
            **update_stats,
            "lr": lr,
            "time/rollout_s": t1 - t0,
            "time/scoring_s": t2 - t1,
            "time/update_s": t3 - t2,
        }

    def _show(self, bar: Any, phase: str) -> None:
        # One bar for the whole run; the phase of the current step is its postfix (a
        # nested bar per request could only jump from 0 to 100% at the end).
        self.phase = phase
        if bar is not None:
            last = "" if self.last_reward is None else f", last reward {self.last_reward:.3f}"
            bar.set_postfix_str(phase + last)

    def advantages(
        self, rollouts: Sequence[Rollout], results: Sequence[dict[str, Any]]
    ) -> tuple[StepBatch, dict[str, float]]:
        rewards = torch.tensor([reward_of(r) for r in results])
        valid = torch.tensor([is_scored(r) for r in results])
        lengths = torch.tensor([len(r.completion_ids) for r in rollouts])
        advantages, train, zero = group_advantages(self.config, rewards, valid, lengths)
        keep = train.nonzero().flatten().tolist()
        behav = [rollouts[i].behav_logprobs for i in keep]
        batch = StepBatch(
            samples=[Sample(rollouts[i].prompt, rollouts[i].completion_ids) for i in keep],
            advantages=advantages[keep],
            behav_logprobs=behav if any(b is not None for b in behav) else None,
        )
        stats = {
            "groups": float(len(zero)),
            "zero_signal_groups": float(zero.sum()),
            "trained_samples": float(len(keep)),
        }
        return batch, stats

    def _needs_old_logprobs(self, batch: StepBatch, mini_batches: int) -> bool:
        return (
            mini_batches > 1
            or self._decoupled(batch)
            or has_active_dropout(self.policy.model)
        )

    def _decoupled(self, batch: StepBatch) -> bool:
        return self.config.decoupled_loss and batch.behav_logprobs is not None

    def update(self, batch: StepBatch) -> dict[str, float]:
        config = self.config
        if not batch.samples:
            log.info("no sample carries a GRPO signal this step; the update is skipped")
            for _ in range(config.mini_batches_per_step):  # the schedule counts planned steps
                self._advance_schedule()
            return {"loss": 0.0, "tokens_trained": 0.0, "skipped_optimizer_steps": 0.0}
        # Mini-batches (one optimizer step each) of near-equal size, each cut into
        # micro-batches (one forward/backward each); `micro` lists all micro-batches in
        # order and `minis` says which of them make up each optimizer step.
        micro: list[list[int]] = []
        minis: list[range] = []
        for part in _split(list(range(len(batch.samples))), config.mini_batches_per_step):
            chunks = _chunks(part, config.micro_batch_size)
            minis.append(range(len(micro), len(micro) + len(chunks)))
            micro.extend(chunks)
        old_logp = (
            self._old_logprobs(batch, micro) if self._needs_old_logprobs(batch, len(minis))
            else None
        )
        ref_logp = self._ref_logprobs(batch, micro)
        self.policy.model.train()
        totals: dict[str, float] = {}
        token_total = 0
        grad_norms: list[float] = []
        skipped = 0
        params = [p for p in self.policy.model.parameters() if p.requires_grad]
        for chunk_ids in minis:
            num_tokens = sum(len(batch.samples[i][1]) for c in chunk_ids for i in micro[c])
            self.optimizer.zero_grad(set_to_none=True)
            for c in chunk_ids:
                samples = [batch.samples[i] for i in micro[c]]
                logp, mask, entropy = self.policy.sequence_logprobs(
                    samples, with_entropy=True, temperature=config.temperature
                )
                old = old_logp[c] if old_logp is not None else logp.detach()
                behav = self._behav_logprobs(batch, micro[c], old) if self._decoupled(batch) \
                    else None
                loss, stats = grpo.policy_loss(
                    logp,
                    old,
                    batch.advantages[micro[c]].to(logp.device),
                    mask,
                    clip_low=config.clip_low,
                    clip_high=config.clip_high,
                    ref_logp=ref_logp[c] if ref_logp is not None else None,
                    kl_coef=config.kl_coef,
                    num_tokens=num_tokens,
                    behav_logp=behav,
                    behav_weight_cap=config.behav_weight_cap,
                )
                loss.backward()
                tokens = int(mask.sum())
                token_total += tokens
                stats["loss"] = float(loss.detach()) * num_tokens / max(tokens, 1)
                if entropy is not None:
                    m = mask.to(entropy.dtype)
                    stats["entropy"] = float((entropy.detach() * m).sum() / m.sum().clamp(min=1))
                for key, value in stats.items():
                    totals[key] = totals.get(key, 0.0) + value * tokens
            norm = float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm))
            if math.isfinite(norm):
                grad_norms.append(norm)
                self.optimizer.step()
            else:
                # An inf/NaN gradient would poison the weights and AdamW's moments.
                log.warning("gradient norm is %s: this optimizer step is skipped", norm)
                self.optimizer.zero_grad(set_to_none=True)
                skipped += 1
            self._advance_schedule()
        out = {key: value / max(token_total, 1) for key, value in totals.items()}
        out["grad_norm"] = sum(grad_norms) / len(grad_norms) if grad_norms else float("nan")
        out["tokens_trained"] = float(token_total)
        out["skipped_optimizer_steps"] = float(skipped)
        return out

    def _advance_schedule(self) -> None:
        # The schedule counts optimizer steps planned, taken or skipped; torch warns when
        # a step was skipped, which here is intended.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            self.scheduler.step()

    def _behav_logprobs(
        self, batch: StepBatch, ids: list[int], old: torch.Tensor
    ) -> torch.Tensor:
        """The sampler's log-probs laid out like `old` ([B, T]); a sample without them
        takes `old` (weight 1: it was sampled by the proximal policy itself)."""
        assert batch.behav_logprobs is not None
        out = old.detach().clone()
        for row, i in enumerate(ids):
            values = batch.behav_logprobs[i]
            if values is not None:
                out[row, : len(values)] = values.to(out.device, out.dtype)
        return out

    @torch.no_grad()
    def _old_logprobs(self, batch: StepBatch, micro: list[list[int]]) -> list[torch.Tensor]:
        model = self.policy.model
        was_training = model.training
        model.eval()  # the proximal policy as it samples: no dropout
        try:
            return [
                self.policy.sequence_logprobs(
                    [batch.samples[i] for i in ids], temperature=self.config.temperature
                )[0].detach()
                for ids in micro
            ]
        finally:
            model.train(was_training)

    @torch.no_grad()
    def _ref_logprobs(self, batch: StepBatch, micro: list[list[int]]) -> list[torch.Tensor] | None:
        if self.ref_policy is None:
            return None
        return [
            self.ref_policy.sequence_logprobs(
                [batch.samples[i] for i in ids], temperature=self.config.temperature
            )[0].detach()
            for ids in micro
        ]

    # -- held-out evaluation --

    def evaluate(self, rows: Sequence[Row], bar: Any = None) -> dict[str, float]:
        """Answers to the held-out rows (greedy by default): `eval/reward/mean`,
        `eval/pass_at_1` and `eval/reward/<source>`."""
        config = self.config
        self._show(bar, f"eval on {len(rows)} held-out rows")
        options = SamplingOptions(
            samples=config.eval_samples,
            max_new_tokens=config.eval_max_new_tokens or config.max_new_tokens,
            temperature=config.eval_temperature,
            prompts_per_batch=config.prompts_per_step,
            seed=config.seed,
        )
        stats = score_rows(self.policy, self.engine, self.client, rows, options, progress=False)
        table = per_source(stats)
        if "all" not in table:
            log.warning("no held-out response was scored; this evaluation has no reward")
            return {"eval/reward/mean": float("nan")}
        out = {
            "eval/reward/mean": table["all"]["mean_reward"],
            "eval/pass_at_1": table["all"]["pass_at_1"],
        }
        for source, values in table.items():
            if source != "all":
                out[f"eval/reward/{source}"] = values["mean_reward"]
        return out

    def is_best(self, reward: float) -> bool:
        return math.isfinite(reward) and (self.best_eval is None or reward > self.best_eval)

    # -- checkpoints --

    def state_dict(self, step: int, sampler: BatchSampler) -> dict[str, Any]:
        return {
            "step": step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": sampler.state_dict(),
            "stage": self.config.stage,
            "config": self.config.to_dict(),
            "best_eval": self.best_eval,
            "best_step": self.best_step,
        }

    def load_state_dict(self, state: dict[str, Any], sampler: BatchSampler) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        self.best_eval = state.get("best_eval")
        self.best_step = state.get("best_step")


def _chunks(values: list[int], size: int) -> list[list[int]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def _split(values: list[int], parts: int) -> list[list[int]]:
    """`values` in at most `parts` contiguous pieces of near-equal size, none empty."""
    parts = min(parts, len(values))
    bounds = [round(i * len(values) / parts) for i in range(parts + 1)]
    return [values[bounds[i] : bounds[i + 1]] for i in range(parts)]


def planned_steps(config: GRPOConfig, sampler: BatchSampler) -> int:
    """Rollout batches of the stage: `total_steps`, or `epochs` passes over the main rows."""
    return config.total_steps or config.epochs * sampler.epoch_length()


def hold_out(rows: list[Row], count: int, seed: int) -> tuple[list[Row], list[Row]]:
    """(training rows, `count` held-out rows), drawn once with the run's seed."""
    if count >= len(rows):
        raise DataError(
            f"eval_holdout {count} would hold out all {len(rows)} training rows",
            "lower eval_holdout, or give eval_data files",
        )
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held = set(order[:count])
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


@dataclass(frozen=True)
class TrainResult:
    """What a stage leaves behind: RUN/final (last step) and RUN/best (held-out reward)."""

    final: Path | None
    best: Path | None
    best_eval: float | None
    best_step: int | None


def _check_start(config: GRPOConfig) -> None:
    if isinstance(config, Stage2Config) and not Path(config.init_from).exists():
        raise ModelLoadError(
            f"stage-1 checkpoint {config.init_from} does not exist",
            "run stage 1 first, or pick one with --init-from RUN/final (RUN/best exists "
            "when stage 1 evaluated held-out rows)",
        )


def train(
    config: GRPOConfig,
    resume: bool = False,
    client: RewardClient | None = None,
    progress: bool = True,
) -> TrainResult:
    """Run one stage; returns where its last and best checkpoints are."""
    run_dir = Path(config.output_dir)
    seed_everything(config.seed)
    _check_start(config)
    client = client or reward_client_for(config)
    known = client.answer_types()
    dataset = load_rows(config.data, known_answer_types=known)
    normal = None
    if isinstance(config, Stage2Config) and config.normal_data:
        normal = load_rows(config.normal_data, known_answer_types=known).rows
    main_rows, mixed_rows = stage_rows(config.stage, dataset.rows, normal)
    if not main_rows:
        kind = "answer-only (prompt_type normal)" if config.stage == 1 else "chain-of-thought"
        raise DataError(f"no {kind} rows to train stage {config.stage} on "
                        f"({dataset.report.summary()})",
                        "check the rows' prompt_type, or train the other stage")
    eval_rows: list[Row] = []
    if config.eval_data:
        eval_rows = load_rows(config.eval_data, known_answer_types=known).rows
    elif config.eval_holdout:
        main_rows, eval_rows = hold_out(main_rows, config.eval_holdout, config.seed)
    share = config.normal_share if isinstance(config, Stage2Config) else 0.0
    try:
        sampler = BatchSampler(main_rows, config.prompts_per_step, config.seed, mixed_rows, share)
    except ValueError as exc:
        raise DataError(str(exc), "give normal_data with answer-only rows, or normal_share 0") \
            from None
    log.info(
        "stage %d: %d rows to train on, %d to mix in, %d held out (%s)",
        config.stage, len(main_rows), len(mixed_rows), len(eval_rows), dataset.report.summary(),
    )
    keep_best = "best" in config.keep and bool(eval_rows)
    if "best" in config.keep and not eval_rows:
        log.warning("no held-out rows (eval_data / eval_holdout): RUN/best is not kept")
    with_images = sum(bool(row.images) for row in main_rows + mixed_rows)

    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if resume and checkpoint is None:
        log.warning("--resume: no checkpoint in %s; starting from the beginning", run_dir)
    if checkpoint is None and (run_dir / BEST).is_dir():
        # A best checkpoint of an earlier run here would be mistaken for this run's.
        shutil.rmtree(run_dir / BEST)
    policy = load_config_policy(config, checkpoint.path if checkpoint else start_model(config))
    if with_images and not policy.is_vision:
        log.warning("%s is text-only: the images of %d rows are left out of their prompts",
                    start_model(config), with_images)
    ref_policy = None
    if config.kl_coef > 0:
        ref_policy = load_config_policy(config, start_model(config))
        ref_policy.model.eval().requires_grad_(False)

    if checkpoint is None and config.sft_warmup_steps:
        warmup_rows = main_rows
        if config.sft_warmup_data:
            warmup_rows = load_rows(config.sft_warmup_data, known_answer_types=known).rows
        supervised_warmup(
            policy, warmup_rows, config.sft_warmup_steps, config.sft_warmup_lr,
            config.prompts_per_step, config.seed,
        )
    total = planned_steps(config, sampler)
    options = dict(config.engine_options)
    if config.rollout_engine == "vllm":
        options.setdefault("trust_remote_code", config.trust_remote_code)
    engine = make_engine(config.rollout_engine, policy, **options)
    trainer = GRPOTrainer(config, policy, engine, client, ref_policy, total_steps=total)
    start_step = 0
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint.state, sampler)
        set_rng_state(checkpoint.state["rng"])
        start_step = checkpoint.step
        log.info("resumed from %s at step %d", checkpoint.path, start_step)

    metrics = MetricsWriter(
        run_dir, config.log_tensorboard, resume_step=start_step if checkpoint else None
    )
    bar = tqdm(range(start_step, total), desc=f"stage {config.stage}", unit="step",
               initial=start_step, total=total, disable=not progress)
    try:
        for step in bar:
            record = trainer.step(sampler.next_batch(), step, bar)
            done = step + 1
            if eval_rows and (done % config.eval_every == 0 or done == total):
                record.update(trainer.evaluate(eval_rows, bar))
                reward = record["eval/reward/mean"]
                if keep_best and trainer.is_best(reward):
                    trainer.best_eval, trainer.best_step = reward, done
                    save_checkpoint(run_dir, BEST, policy, trainer.state_dict(done, sampler))
            metrics.write(record)
            if progress and "eval/reward/mean" in record:
                bar.write(_step_line(record))
            if done % config.save_every == 0 and done < total:
                save_checkpoint(run_dir, f"step_{done:06d}", policy,
                                trainer.state_dict(done, sampler), keep=config.keep_checkpoints)
    finally:
        metrics.close()
        bar.close()
    final = None
    if "last" in config.keep:
        final = save_checkpoint(run_dir, FINAL, policy, trainer.state_dict(total, sampler))
    best = run_dir / BEST if keep_best and (run_dir / BEST).is_dir() else None
    return TrainResult(final, best, trainer.best_eval, trainer.best_step)


def _step_line(record: dict[str, Any]) -> str:
    return (f"step {record['step']}: reward {record['reward/mean']:.3f}, "
            f"held-out reward {record['eval/reward/mean']:.3f}")
