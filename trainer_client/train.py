"""GRPO training: one stage of the recipe's two-stage curriculum.

One step (RECIPE.md, "Training recipe"; every formula is a pure function in `grpo`):

1. Draw `prompts_per_step` rows (`curriculum.BatchSampler`; stage 2 mixes in a share of
   answer-only rows) and build each prompt with the recipe's instruction, system message
   and the model's chat template/processor.
2. Sample `group_size` responses per prompt with the rollout engine (`hf` or `vllm`).
3. Score every response through the reward server (`POST /score`). Items it could not
   judge (status `timeout`/`error`) are logged and marked invalid: they take no part in
   any mean or std and get no gradient. They are never read as reward 0.
4. Shape rewards `(r - bias) * scale` (0.5, 10), normalize per group (mean/std over the
   group's valid items), then re-normalize over the batch.
5. Groups whose valid rewards are all equal carry no signal; they are counted
   (`zero_signal_groups`) and, by default, left out of the update.
6. Update with the token-level clipped loss (clip 0.2 / 0.28, sum over every valid token
   divided by their number), micro-batches accumulating gradients, gradient clipping and
   AdamW. The batch may be split into `mini_batches_per_step` optimizer steps; "old"
   log-probs are recomputed by the training model before the first one (rollout engines
   such as vLLM compute log-probs with different numerics). With a single mini-batch the
   weights have not moved yet, so the detached log-probs of the loss's own forward pass
   are exactly those old log-probs and the extra forward pass is skipped.
7. Push the new weights to the rollout engine; log metrics; checkpoint every N steps.

An optional supervised warm-up (`sft_warmup_steps`) teaches a tiny randomly initialised
model the `<answer>...</answer>` format before GRPO; the real recipe starts from an
instruction-tuned model and leaves it off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from reward_client import RewardClient, is_scored
from trainer_client import grpo
from trainer_client.checkpoint import (
    FINAL,
    latest_checkpoint,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from trainer_client.config import GRPOConfig, Stage2Config, start_model
from trainer_client.curriculum import BatchSampler, stage_rows
from trainer_client.data import Row, load_rows
from trainer_client.metrics import MetricsWriter, reward_metrics
from trainer_client.policy import Policy, Sample, load_policy
from trainer_client.rollout import Rollout, RolloutEngine, make_engine

log = logging.getLogger(__name__)

def reward_client_for(config: GRPOConfig, progress: bool = False) -> RewardClient:
    return RewardClient(
        config.reward_url,
        timeout_s=config.reward_timeout_s,
        batch_size=config.reward_batch_size,
        retries=config.reward_retries,
        progress=progress,
    )


def build_prompts(policy: Policy, rows: Sequence[Row]) -> list[Any]:
    """Model inputs of each row: the recipe's messages through the chat template/processor."""
    prompts = []
    for row in rows:
        images = row.load_images() if policy.is_vision else []
        prompts.append(policy.build_prompt(row.messages(policy.is_vision), images))
    return prompts


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


class GRPOTrainer:
    def __init__(
        self,
        config: GRPOConfig,
        policy: Policy,
        engine: RolloutEngine,
        client: RewardClient,
        ref_policy: Policy | None = None,
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
            weight_decay=config.weight_decay,
        )

    # -- one step --

    def step(self, rows: Sequence[Row], step: int) -> dict[str, Any]:
        config = self.config
        t0 = time.perf_counter()
        prompts = build_prompts(self.policy, rows)
        self.policy.model.eval()
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
        results = self.client.score(items, desc=f"scoring step {step}")
        t2 = time.perf_counter()

        batch, advantage_stats = self.advantages(rollouts, results)
        update_stats = self.update(batch)
        self.engine.sync_weights(self.policy)
        t3 = time.perf_counter()

        lengths = [len(r.completion_ids) for r in rollouts]
        sources = [rows[r.prompt_index].source for r in rollouts]
        truncated = sum(r.finish_reason == "length" for r in rollouts)
        answer_only = sum(row.answer_only for row in rows)
        return {
            "step": step + 1,
            **reward_metrics(results, sources),
            "response_length/mean": sum(lengths) / len(lengths),
            "response_length/max": max(lengths),
            "truncated_fraction": truncated / len(rollouts),
            "prompts/answer_only": answer_only,
            "prompts/chain_of_thought": len(rows) - answer_only,
            **advantage_stats,
            **update_stats,
            "lr": self.optimizer.param_groups[0]["lr"],
            "time/rollout_s": t1 - t0,
            "time/scoring_s": t2 - t1,
            "time/update_s": t3 - t2,
        }

    def advantages(
        self, rollouts: Sequence[Rollout], results: Sequence[dict[str, Any]]
    ) -> tuple[StepBatch, dict[str, float]]:
        config = self.config
        rewards = torch.tensor([float(r["reward"]) for r in results])
        valid = torch.tensor([is_scored(r) for r in results])
        shaped = grpo.shape_rewards(rewards, config.reward_bias, config.reward_scale)
        group_adv = grpo.group_normalize(shaped, config.group_size, valid=valid)
        zero = grpo.zero_signal_groups(rewards, config.group_size, valid=valid)
        train = valid.clone()
        if config.skip_zero_signal_groups:
            train &= ~zero.repeat_interleave(config.group_size)
        # An empty completion has no token to carry a gradient.
        train &= torch.tensor([len(r.completion_ids) > 0 for r in rollouts])
        advantages = grpo.batch_normalize(group_adv, mask=train)
        keep = train.nonzero().flatten().tolist()
        batch = StepBatch(
            samples=[Sample(rollouts[i].prompt, rollouts[i].completion_ids) for i in keep],
            advantages=advantages[keep],
        )
        stats = {
            "groups": float(len(zero)),
            "zero_signal_groups": float(zero.sum()),
            "trained_samples": float(len(keep)),
        }
        return batch, stats

    def update(self, batch: StepBatch) -> dict[str, float]:
        config = self.config
        if not batch.samples:
            log.info("no sample carries a GRPO signal this step; the update is skipped")
            return {"loss": 0.0, "tokens_trained": 0.0}
        self.policy.model.train()
        # Mini-batches (one optimizer step each) of near-equal size, each cut into
        # micro-batches (one forward/backward each); `micro` lists all micro-batches in
        # order and `minis` says which of them make up each optimizer step.
        micro: list[list[int]] = []
        minis: list[range] = []
        for part in _split(list(range(len(batch.samples))), config.mini_batches_per_step):
            chunks = _chunks(part, config.micro_batch_size)
            minis.append(range(len(micro), len(micro) + len(chunks)))
            micro.extend(chunks)
        old_logp = self._old_logprobs(batch, micro) if len(minis) > 1 else None
        ref_logp = self._ref_logprobs(batch, micro)
        totals: dict[str, float] = {}
        token_total = 0
        grad_norms = []
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
            grad_norms.append(float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)))
            self.optimizer.step()
        out = {key: value / max(token_total, 1) for key, value in totals.items()}
        out["grad_norm"] = sum(grad_norms) / len(grad_norms)
        out["tokens_trained"] = float(token_total)
        return out

    @torch.no_grad()
    def _old_logprobs(self, batch: StepBatch, micro: list[list[int]]) -> list[torch.Tensor]:
        return [
            self.policy.sequence_logprobs(
                [batch.samples[i] for i in ids], temperature=self.config.temperature
            )[0].detach()
            for ids in micro
        ]

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

    # -- checkpoints --

    def state_dict(self, step: int, sampler: BatchSampler) -> dict[str, Any]:
        return {
            "step": step,
            "optimizer": self.optimizer.state_dict(),
            "sampler": sampler.state_dict(),
            "stage": self.config.stage,
            "config": self.config.to_dict(),
        }


def _chunks(values: list[int], size: int) -> list[list[int]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def _split(values: list[int], parts: int) -> list[list[int]]:
    """`values` in at most `parts` contiguous pieces of near-equal size, none empty."""
    parts = min(parts, len(values))
    bounds = [round(i * len(values) / parts) for i in range(parts + 1)]
    return [values[bounds[i] : bounds[i + 1]] for i in range(parts)]


def train(
    config: GRPOConfig,
    resume: bool = False,
    client: RewardClient | None = None,
    progress: bool = True,
) -> Path:
    """Run one stage; returns the final checkpoint folder (RUN/final)."""
    run_dir = Path(config.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    client = client or reward_client_for(config, progress=progress)
    known = client.answer_types()
    dataset = load_rows(config.data, known_answer_types=known)
    normal = None
    if isinstance(config, Stage2Config) and config.normal_data:
        normal = load_rows(config.normal_data, known_answer_types=known).rows
    main_rows, mixed_rows = stage_rows(config.stage, dataset.rows, normal)
    share = config.normal_share if isinstance(config, Stage2Config) else 0.0
    sampler = BatchSampler(main_rows, config.prompts_per_step, config.seed, mixed_rows, share)
    log.info(
        "stage %d: %d rows to train on, %d to mix in (%s)",
        config.stage, len(main_rows), len(mixed_rows), dataset.report.summary(),
    )
    with_images = sum(bool(row.images) for row in main_rows + mixed_rows)

    checkpoint = latest_checkpoint(run_dir) if resume else None
    if resume and checkpoint is None:
        log.warning("--resume: no checkpoint in %s; starting from the beginning", run_dir)
    policy = load_policy(str(checkpoint.path if checkpoint else start_model(config)),
                         config.device, trust_remote_code=config.trust_remote_code)
    if with_images and not policy.is_vision:
        log.warning("%s is text-only: the images of %d rows are left out of their prompts",
                    start_model(config), with_images)
    ref_policy = None
    if config.kl_coef > 0:
        ref_policy = load_policy(start_model(config), config.device,
                                 trust_remote_code=config.trust_remote_code)
        ref_policy.model.eval().requires_grad_(False)

    start_step = 0
    if checkpoint is None and config.sft_warmup_steps:
        warmup_rows = main_rows
        if config.sft_warmup_data:
            warmup_rows = load_rows(config.sft_warmup_data, known_answer_types=known).rows
        supervised_warmup(
            policy, warmup_rows, config.sft_warmup_steps, config.sft_warmup_lr,
            config.prompts_per_step, config.seed,
        )
    engine = make_engine(config.rollout_engine, policy, **config.engine_options)
    trainer = GRPOTrainer(config, policy, engine, client, ref_policy)
    if checkpoint is not None:
        trainer.optimizer.load_state_dict(checkpoint.state["optimizer"])
        sampler.load_state_dict(checkpoint.state["sampler"])
        set_rng_state(checkpoint.state["rng"])
        start_step = checkpoint.step
        log.info("resumed from %s at step %d", checkpoint.path, start_step)

    total = config.total_steps or sampler.epoch_length()
    metrics = MetricsWriter(
        run_dir, config.log_tensorboard, resume_step=start_step if checkpoint else None
    )
    bar = tqdm(range(start_step, total), desc=f"stage {config.stage}", unit="step",
               initial=start_step, total=total, disable=not progress)
    try:
        for step in bar:
            record = trainer.step(sampler.next_batch(), step)
            metrics.write(record)
            bar.set_postfix(reward=f"{record['reward/mean']:.3f}",
                            len=f"{record['response_length/mean']:.0f}",
                            zero_signal=f"{record['zero_signal_groups']:.0f}")
            done = step + 1
            if done % config.save_every == 0 and done < total:
                save_checkpoint(run_dir, f"step_{done:06d}", policy,
                                trainer.state_dict(done, sampler), keep=config.keep_checkpoints)
    finally:
        metrics.close()
        bar.close()
    return save_checkpoint(run_dir, FINAL, policy, trainer.state_dict(total, sampler))
