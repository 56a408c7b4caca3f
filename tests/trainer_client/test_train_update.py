"""The training step's pieces without a reward server: advantages of a batch's results,
the update's guards (non-finite gradients, eval-mode old log-probs, the decoupled loss) and
the learning-rate schedule. Every expected number is worked out by hand in a comment."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from trainer_client.config import Stage1Config
from trainer_client.policy import Policy, PromptInputs, Sample, load_policy
from trainer_client.rollout import Rollout
from trainer_client.train import GRPOTrainer, StepBatch, group_advantages


def config(**values) -> Stage1Config:
    return Stage1Config(model="m", data=["d.jsonl"], **values)


def fake_trainer(cfg: Stage1Config, total_steps: int = 1) -> GRPOTrainer:
    """A trainer around a one-parameter model: enough for the advantages and the schedule."""
    policy = SimpleNamespace(model=torch.nn.Linear(1, 1))
    return GRPOTrainer(cfg, policy, engine=None, client=None, total_steps=total_steps)  # type: ignore[arg-type]


def rollout(i: int, length: int) -> Rollout:
    prompt = PromptInputs(input_ids=torch.tensor([1, 2]))
    return Rollout(i // 2, prompt, torch.ones(length, dtype=torch.long), "x", "stop")


# Two groups of two: rewards (1, 0) and (1, 1) (zero signal), over 3, 1, 2, 2 tokens.
# Shaped (r - 0.5) * 10: (5, -5), (5, 5). Group-normalized: (s, -s) with s = 1/sqrt(2)
# (unbiased std of (5, -5) is sqrt(50)), and (0, 0).
REWARDS = torch.tensor([1.0, 0.0, 1.0, 1.0])
LENGTHS = torch.tensor([3, 1, 2, 2])
S = 1 / math.sqrt(2)


def test_recipe_advantages_are_token_weighted_with_zero_signal_groups() -> None:
    adv, train, zero = group_advantages(
        config(group_size=2), REWARDS, torch.ones(4, dtype=torch.bool), LENGTHS
    )
    assert zero.tolist() == [False, True]
    assert train.tolist() == [True, True, True, True]  # zero-signal group kept (recipe)
    # Over 8 tokens: mean = (3s - s) / 8 = s/4; var = (3 (3s/4)^2 + (5s/4)^2 + 4 (s/4)^2) / 8
    # = 56 s^2 / 128; so the zero-signal samples get -(s/4) / std, not 0.
    mean = S / 4
    std = math.sqrt(56 * S * S / 128)
    expected = torch.tensor([S - mean, -S - mean, -mean, -mean]) / (std + 1e-5)
    torch.testing.assert_close(adv, expected.float())


def test_sample_advantages_over_informative_groups_and_skipping() -> None:
    adv, train, _ = group_advantages(
        config(group_size=2, batch_adv_norm="samples"), REWARDS, torch.ones(4, dtype=torch.bool),
        LENGTHS,
    )
    # (s, -s) whitened with the unbiased std over 2 samples (= 1) is (s, -s) again.
    torch.testing.assert_close(adv, torch.tensor([S, -S, 0.0, 0.0]), atol=1e-5, rtol=0)
    assert train.all()  # still trained on (zero advantage, tokens in the denominator)
    _, skipped, _ = group_advantages(
        config(group_size=2, skip_zero_signal_groups=True), REWARDS,
        torch.ones(4, dtype=torch.bool), LENGTHS,
    )
    assert skipped.tolist() == [True, True, False, False]


def test_defaults_follow_the_recipe() -> None:
    cfg = config()
    assert cfg.batch_adv_norm == "tokens" and cfg.skip_zero_signal_groups is False
    assert cfg.mini_batches_per_step == 1 and cfg.lr_warmup_proportion == 0.001
    assert cfg.decoupled_loss and cfg.behav_weight_cap == 5.0


def test_rejected_is_a_scored_zero_and_timeout_is_left_out() -> None:
    trainer = fake_trainer(config(group_size=4))
    results = [
        {"status": "ok", "reward": 1.0},
        {"status": "rejected", "reward": 0.0, "error": "verifier guard refused the response"},
        {"status": "timeout", "reward": 0.0},
        {"status": "rejected", "reward": 1.0},  # a rejected response is 0, whatever it says
    ]
    batch, stats = trainer.advantages([rollout(0, 2)] * 4, results)
    # Trained: ok and both rejected (scored), not the timeout. Group rewards (1, 0, 0):
    # shaped (5, -5, -5), mean -5/3, so the ok sample is above and both rejected below.
    assert stats["trained_samples"] == 3.0 and stats["zero_signal_groups"] == 0.0
    assert batch.advantages[0] > 0 > batch.advantages[1]
    assert batch.advantages[1] == pytest.approx(batch.advantages[2].item())


def test_lr_warms_up_over_a_thousandth_of_the_optimizer_steps() -> None:
    # 500 batches x 2 mini-batches x 2 = 2000 optimizer steps -> 2 warm-up steps.
    trainer = fake_trainer(config(lr=1.0, mini_batches_per_step=2, group_size=2,
                                  prompts_per_step=2), total_steps=1000)
    assert trainer.warmup == 2
    seen = []
    for _ in range(4):
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer.step()
        trainer.scheduler.step()
    assert seen == [0.0, 0.5, 1.0, 1.0]


@pytest.fixture
def tiny_policy(tiny_text_model: Path) -> Policy:
    torch.manual_seed(0)
    return load_policy(tiny_text_model, "cpu")


def tiny_batch(policy: Policy, behav_shift: float | None = None) -> StepBatch:
    prompt = policy.build_prompt([{"role": "user", "content": "Copy the digit: 3."}])
    ids = policy.tokenizer("<answer>3</answer>", add_special_tokens=False)["input_ids"]
    samples = [Sample(prompt, torch.tensor(ids)), Sample(prompt, torch.tensor(ids[:2]))]
    behav = None
    if behav_shift is not None:
        with torch.no_grad():
            logp, mask, _ = policy.sequence_logprobs(samples)
        behav = [logp[i, : int(mask[i].sum())] - behav_shift for i in range(len(samples))]
    return StepBatch(samples, torch.tensor([1.0, -1.0]), behav)


def trainer_for(policy: Policy, **values) -> GRPOTrainer:
    return GRPOTrainer(config(group_size=2, prompts_per_step=1, lr=1e-2, **values), policy,
                       engine=None, client=None)  # type: ignore[arg-type]


def test_non_finite_gradient_skips_the_optimizer_step(tiny_policy: Policy) -> None:
    trainer = trainer_for(tiny_policy)
    before = {k: v.clone() for k, v in tiny_policy.model.state_dict().items()}
    weight = tiny_policy.model.get_input_embeddings().weight
    handle = weight.register_hook(lambda grad: grad * float("inf"))
    try:
        stats = trainer.update(tiny_batch(tiny_policy))
    finally:
        handle.remove()
    assert stats["skipped_optimizer_steps"] == 1.0 and math.isnan(stats["grad_norm"])
    for name, tensor in tiny_policy.model.state_dict().items():
        torch.testing.assert_close(tensor, before[name], msg=name)
    assert not trainer.optimizer.state  # AdamW's moments were never touched
    stats = trainer.update(tiny_batch(tiny_policy))  # a finite step goes through
    assert stats["skipped_optimizer_steps"] == 0.0 and math.isfinite(stats["grad_norm"])


def test_old_logprobs_come_from_eval_mode(tiny_policy: Policy) -> None:
    model = tiny_policy.model
    model.config.attention_dropout = 0.5
    for module in model.modules():
        if hasattr(module, "attention_dropout"):
            module.attention_dropout = 0.5
    trainer = trainer_for(tiny_policy)
    batch = tiny_batch(tiny_policy)
    assert trainer._needs_old_logprobs(batch, mini_batches=1)  # dropout: recomputed
    model.train()
    old = trainer._old_logprobs(batch, [[0, 1]])[0]
    assert model.training  # the caller's mode is restored
    model.eval()
    with torch.no_grad():
        expected, _, _ = tiny_policy.sequence_logprobs(batch.samples)
    torch.testing.assert_close(old, expected)
    model.train()
    torch.manual_seed(1)
    with torch.no_grad():
        noisy, mask, _ = tiny_policy.sequence_logprobs(batch.samples)
    assert not torch.allclose(noisy[mask], expected[mask])  # train mode would differ


def test_decoupled_loss_weights_tokens_by_the_sampler(tiny_policy: Policy) -> None:
    trainer = trainer_for(tiny_policy)
    assert not trainer._needs_old_logprobs(tiny_batch(tiny_policy), mini_batches=1)
    # Sampler log-probs log(2) below the proximal ones: every weight is 2 (under the cap).
    stats = trainer.update(tiny_batch(tiny_policy, behav_shift=math.log(2)))
    assert stats["behav_weight_mean"] == pytest.approx(2.0, rel=1e-4)
    assert stats["behav_filtered_fraction"] == 0.0
    # log(10) below: weights 10 > 5, every token filtered out, nothing is learned. With
    # fresh AdamW moments and a zero gradient only the weight decay moves the weights.
    fresh = trainer_for(tiny_policy)
    before = {k: v.clone() for k, v in tiny_policy.model.state_dict().items()}
    stats = fresh.update(tiny_batch(tiny_policy, behav_shift=math.log(10)))
    assert stats["behav_filtered_fraction"] == 1.0 and stats["grad_norm"] == 0.0
    assert stats["loss"] == 0.0
    for name, tensor in tiny_policy.model.named_parameters():
        torch.testing.assert_close(tensor.detach(), before[name] * (1 - 1e-2 * 0.01), msg=name)


def test_reward_url_picks_http_or_grpc() -> None:
    from trainer_client.train import reward_client_for

    assert reward_client_for(config(reward_url="http://reward:8000")).transport == "http"
    grpc = reward_client_for(config(reward_url="grpc://reward:50051", reward_retries=2))
    assert grpc.transport == "grpc" and grpc.retries == 2


def test_epochs_set_the_number_of_steps() -> None:
    from trainer_client.curriculum import BatchSampler
    from trainer_client.data import Row
    from trainer_client.train import hold_out, planned_steps

    rows = [Row(id=str(i), problem="p", answer="1", answer_type="number") for i in range(64)]
    sampler = BatchSampler(rows, prompts_per_step=8, seed=0)
    # 64 rows / 8 per batch = 8 batches an epoch; the recipe's 30 epochs: 240 steps
    assert planned_steps(config(prompts_per_step=8, epochs=30), sampler) == 240
    assert planned_steps(config(prompts_per_step=8, epochs=30, total_steps=5), sampler) == 5
    train_rows, held = hold_out(rows, 16, seed=0)
    assert len(train_rows) == 48 and len(held) == 16
    assert not {r.id for r in train_rows} & {r.id for r in held}
    assert hold_out(rows, 16, seed=0)[1] == held  # the same rows for the same seed
