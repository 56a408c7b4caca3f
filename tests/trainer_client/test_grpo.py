"""Unit tests of the GRPO math on hand-made tensors (values checked by hand or by torch)."""

from __future__ import annotations

import math

import pytest
import torch

from trainer_client.grpo import (
    batch_normalize,
    behaviour_weights,
    group_normalize,
    policy_loss,
    shape_rewards,
    token_batch_normalize,
    token_entropy,
    token_logprobs,
    warmup_factor,
    warmup_steps,
    zero_signal_groups,
)


@pytest.mark.parametrize(
    "reward,expected",
    [
        (0.0, -5.0),  # wrong answer
        (1.0, 5.0),  # right answer
        (0.5, 0.0),  # the bias itself
        (1.5, 10.0),  # spatial item with the think-box bonus
    ],
)
def test_shape_rewards_recipe_defaults(reward: float, expected: float) -> None:
    assert shape_rewards(torch.tensor([reward])).item() == pytest.approx(expected)


def test_shape_rewards_custom_bias_scale() -> None:
    out = shape_rewards(torch.tensor([0.0, 1.0]), bias=0.0, scale=2.0)
    assert out.tolist() == [0.0, 2.0]


def test_group_normalize_matches_torch_per_group() -> None:
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.2, 0.4, 0.9, 0.1])
    adv = group_normalize(rewards, group_size=4, eps=0.0)
    for g in range(2):
        chunk = rewards[4 * g : 4 * g + 4]
        expected = (chunk - chunk.mean()) / chunk.std()
        torch.testing.assert_close(adv[4 * g : 4 * g + 4], expected)
    # Each group is centred on its own mean, not on the batch's.
    assert adv[:4].sum().item() == pytest.approx(0.0, abs=1e-6)
    assert adv[4:].sum().item() == pytest.approx(0.0, abs=1e-6)


def test_group_normalize_all_equal_group_is_zero() -> None:
    rewards = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    adv = group_normalize(rewards, group_size=3)
    assert adv[:3].tolist() == [0.0, 0.0, 0.0]
    assert adv[3] < 0 < adv[4]


def test_group_normalize_excludes_invalid_items() -> None:
    # Item 2 timed out on the server: it must not count as reward 0.
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0])
    valid = torch.tensor([True, True, False, True])
    adv = group_normalize(rewards, group_size=4, eps=0.0, valid=valid)
    kept = torch.tensor([1.0, 0.0, 0.0])
    expected = (kept - kept.mean()) / kept.std()
    torch.testing.assert_close(adv[[0, 1, 3]], expected)
    assert adv[2].item() == 0.0


def test_group_normalize_single_valid_member_has_no_signal() -> None:
    adv = group_normalize(torch.tensor([1.0, 0.0]), group_size=2, valid=torch.tensor([True, False]))
    assert adv.tolist() == [0.0, 0.0]


def test_group_normalize_rejects_incomplete_groups() -> None:
    with pytest.raises(ValueError, match="groups of 4"):
        group_normalize(torch.zeros(6), group_size=4)


def test_zero_signal_groups() -> None:
    rewards = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.3, 0.3])
    flags = zero_signal_groups(rewards, group_size=2)
    assert flags.tolist() == [True, True, False, True]
    assert flags.dtype == torch.bool


def test_zero_signal_groups_ignores_invalid() -> None:
    # The only differing reward is invalid, so the group has no signal.
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0])
    valid = torch.tensor([True, False, True, True])
    assert zero_signal_groups(rewards, group_size=4, valid=valid).tolist() == [True]


def test_batch_normalize_unmasked() -> None:
    adv = torch.tensor([1.0, 2.0, 3.0, 6.0])
    out = batch_normalize(adv, eps=0.0)
    torch.testing.assert_close(out, (adv - adv.mean()) / adv.std())


def test_batch_normalize_masked_entries_are_zero_and_ignored() -> None:
    adv = torch.tensor([1.0, 100.0, 3.0])
    mask = torch.tensor([True, False, True])
    out = batch_normalize(adv, mask, eps=0.0)
    kept = torch.tensor([1.0, 3.0])
    torch.testing.assert_close(out[[0, 2]], (kept - kept.mean()) / kept.std())
    assert out[1].item() == 0.0


def test_token_batch_normalize_hand_computed() -> None:
    # Advantages 1, -1, 0, 0 over 1, 3, 2, 2 tokens (8 in all):
    # mean = (1 - 3) / 8 = -0.25; var = (1.25^2 + 3 * 0.75^2 + 4 * 0.25^2) / 8 = 0.4375
    adv = torch.tensor([1.0, -1.0, 0.0, 0.0])
    lengths = torch.tensor([1, 3, 2, 2])
    out = token_batch_normalize(adv, lengths, eps=0.0)
    std = math.sqrt(0.4375)
    expected = torch.tensor([1.25 / std, -0.75 / std, 0.25 / std, 0.25 / std])
    torch.testing.assert_close(out, expected)
    # The zero-advantage samples (a zero-signal group) shift and shrink the statistics:
    # without them mean = -0.5, var = (1.5^2 + 3 * 0.5^2) / 4 = 0.75.
    without = token_batch_normalize(adv, lengths, torch.tensor([True, True, False, False]),
                                    eps=0.0)
    torch.testing.assert_close(without, torch.tensor([1.5, -0.5, 0.0, 0.0]) / math.sqrt(0.75))


def test_token_batch_normalize_weights_tokens_not_samples() -> None:
    # Per sample the two entries are symmetric (mean 0); per token the long one dominates.
    adv = torch.tensor([1.0, -1.0])
    out = token_batch_normalize(adv, torch.tensor([3, 1]), eps=0.0)
    # mean = (3 - 1) / 4 = 0.5, var = (3 * 0.25 + 2.25) / 4 = 0.75
    torch.testing.assert_close(out, torch.tensor([0.5, -1.5]) / math.sqrt(0.75))
    assert token_batch_normalize(adv, torch.tensor([0, 0])).tolist() == [0.0, 0.0]


def test_behaviour_weights_capped_by_filtering() -> None:
    old = torch.log(torch.tensor([[0.5, 0.5, 0.5, 0.5]]))
    behav = torch.log(torch.tensor([[0.25, 0.5, 0.05, 0.9]]))
    mask = torch.tensor([[1, 1, 1, 0]])
    # weights old/behav: 2, 1, 10 (over the cap 5: filtered out), padding: 0
    weights = behaviour_weights(old, behav, mask, cap=5.0)
    torch.testing.assert_close(weights, torch.tensor([[2.0, 1.0, 0.0, 0.0]]))
    uncapped = behaviour_weights(old, behav, mask, cap=None)
    torch.testing.assert_close(uncapped, torch.tensor([[2.0, 1.0, 10.0, 0.0]]))


def test_policy_loss_decoupled_hand_computed() -> None:
    # On-policy ratio 1 and A = 1: per-token surrogate -1, times the weights 2, 1, 0.
    old = torch.log(torch.tensor([[0.5, 0.5, 0.5]]))
    behav = torch.log(torch.tensor([[0.25, 0.5, 0.05]]))
    logp = old.clone().requires_grad_(True)
    loss, stats = policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 3),
                              behav_logp=behav, behav_weight_cap=5.0)
    assert loss.item() == pytest.approx(-(2.0 + 1.0 + 0.0) / 3)
    assert stats["behav_weight_mean"] == pytest.approx(1.5)
    assert stats["behav_filtered_fraction"] == pytest.approx(1 / 3)
    loss.backward()
    assert logp.grad is not None
    torch.testing.assert_close(logp.grad, torch.tensor([[-2 / 3, -1 / 3, 0.0]]))
    # The behaviour policy equal to the proximal one changes nothing.
    same, _ = policy_loss(old.clone(), old, torch.tensor([1.0]), torch.ones(1, 3),
                          behav_logp=old.clone())
    plain, _ = policy_loss(old.clone(), old, torch.tensor([1.0]), torch.ones(1, 3))
    assert same.item() == pytest.approx(plain.item())


@pytest.mark.parametrize(
    "total,warmup",
    [
        (2000, 2),  # the recipe's 0.001: 2 warm-up steps of 2000
        (999, 0),  # int(0.999): no warm-up, constant from the first step
        (20, 0),
    ],
)
def test_warmup_steps_is_a_thousandth(total: int, warmup: int) -> None:
    assert warmup_steps(total, 0.001) == warmup


def test_warmup_factor_constant_after_linear_warmup() -> None:
    assert [warmup_factor(step, 2) for step in range(4)] == [0.0, 0.5, 1.0, 1.0]
    assert [warmup_factor(step, 0) for step in range(3)] == [1.0, 1.0, 1.0]


def test_token_logprobs_matches_log_softmax() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    targets = torch.randint(0, 7, (2, 5))
    expected = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(token_logprobs(logits, targets), expected)


def test_token_logprobs_upcasts_bf16() -> None:
    logits = torch.tensor([[[0.0, math.log(3.0)]]], dtype=torch.bfloat16)
    out = token_logprobs(logits, torch.tensor([[1]]))
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(math.log(0.75), abs=1e-2)


def test_token_entropy() -> None:
    uniform = torch.zeros(1, 1, 4)
    peaked = torch.tensor([[[100.0, 0.0, 0.0, 0.0]]])
    assert token_entropy(uniform).item() == pytest.approx(math.log(4))
    assert token_entropy(peaked).item() == pytest.approx(0.0, abs=1e-6)


def test_policy_loss_on_policy_is_minus_mean_advantage() -> None:
    # ratio == 1: loss = -mean over valid tokens of A; padded tokens do not count.
    logp = torch.log(torch.tensor([[0.5, 0.5, 0.5], [0.2, 0.2, 0.2]]))
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    adv = torch.tensor([1.0, -2.0])
    loss, stats = policy_loss(logp, logp.clone(), adv, mask)
    assert loss.item() == pytest.approx(-(1.0 * 3 - 2.0 * 1) / 4)
    assert stats["clip_fraction"] == 0.0
    assert stats["ratio_mean"] == pytest.approx(1.0)
    assert stats["approx_kl"] == pytest.approx(0.0, abs=1e-7)
    assert "kl_ref" not in stats


def test_policy_loss_is_token_level_not_sequence_mean() -> None:
    # A sequence-mean loss would give (-1 + 1) / 2 = 0; token-level weights the long one.
    logp = torch.zeros(2, 4)
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]])
    loss, _ = policy_loss(logp, logp.clone(), torch.tensor([1.0, -1.0]), mask)
    assert loss.item() == pytest.approx(-(4 - 1) / 5)


@pytest.mark.parametrize(
    "ratio,adv,expected_loss,clipped",
    [
        (1.5, 1.0, -1.28, True),  # positive advantage: capped at 1 + clip_high
        (1.1, 1.0, -1.1, False),  # inside the range
        (0.5, 1.0, -0.5, False),  # below range, positive A: unclipped (pessimistic)
        (0.5, -1.0, 0.8, True),  # negative advantage: floored at 1 - clip_low
        (1.5, -1.0, 1.5, False),  # above range, negative A: unclipped (pessimistic)
    ],
)
def test_policy_loss_asymmetric_clip(
    ratio: float, adv: float, expected_loss: float, clipped: bool
) -> None:
    old = torch.zeros(1, 1)
    logp = torch.full((1, 1), math.log(ratio), requires_grad=True)
    loss, stats = policy_loss(logp, old, torch.tensor([adv]), torch.ones(1, 1))
    assert loss.item() == pytest.approx(expected_loss, rel=1e-5)
    assert stats["clip_fraction"] == (1.0 if clipped else 0.0)
    loss.backward()
    # A clipped token passes no gradient; an unclipped one passes -A * ratio.
    expected_grad = 0.0 if clipped else -adv * ratio
    assert logp.grad is not None
    assert logp.grad.item() == pytest.approx(expected_grad, rel=1e-5)


def test_policy_loss_num_tokens_makes_microbatches_add_up() -> None:
    torch.manual_seed(1)
    logp = torch.randn(4, 6, requires_grad=True)
    old = logp.detach() + 0.1 * torch.randn(4, 6)
    adv = torch.randn(4)
    mask = torch.tensor([[1] * 6, [1] * 2 + [0] * 4, [1] * 5 + [0], [1] * 3 + [0] * 3])
    full, _ = policy_loss(logp, old, adv, mask)
    total = int(mask.sum())
    halves = [
        policy_loss(logp[s], old[s], adv[s], mask[s], num_tokens=total)[0]
        for s in (slice(0, 2), slice(2, 4))
    ]
    torch.testing.assert_close(halves[0] + halves[1], full)


def test_policy_loss_kl_to_reference() -> None:
    logp = torch.log(torch.tensor([[0.5]]))
    ref = torch.log(torch.tensor([[0.25]]))
    delta = math.log(0.5)  # ref - logp
    k3 = math.exp(delta) - delta - 1.0
    base, stats = policy_loss(
        logp, logp.clone(), torch.tensor([0.0]), torch.ones(1, 1), ref_logp=ref
    )
    assert base.item() == pytest.approx(0.0)  # kl_coef 0: reported, not added
    assert stats["kl_ref"] == pytest.approx(k3)
    with_kl, _ = policy_loss(
        logp, logp.clone(), torch.tensor([0.0]), torch.ones(1, 1), ref_logp=ref, kl_coef=0.1
    )
    assert with_kl.item() == pytest.approx(0.1 * k3)


def test_policy_loss_gradient_raises_logp_of_good_tokens() -> None:
    # One SGD step on the loss must raise log-probs with A > 0 and lower those with A < 0.
    logp = torch.log(torch.tensor([[0.3], [0.3]])).requires_grad_(True)
    loss, _ = policy_loss(logp, logp.detach().clone(), torch.tensor([1.0, -1.0]), torch.ones(2, 1))
    loss.backward()
    assert logp.grad is not None
    assert logp.grad[0, 0] < 0 < logp.grad[1, 0]


def test_policy_loss_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="same"):
        policy_loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2), torch.ones(2, 3))


def test_grpo_pieces_teach_the_tiny_model_a_rewarded_answer(tmp_path) -> None:
    """Rollouts -> shaped, group- and batch-normalized advantages -> clipped loss -> AdamW.

    A format warm-up (random digits) gives ~10% reward for "answer 7"; GRPO alone must
    then raise it by a clear margin. No reward server: the reward is computed here.
    """
    import random
    import re

    from trainer_client.policy import Sample, load_policy
    from trainer_client.rollout import HFEngine
    from trainer_client.tiny_models import build_tiny_text_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: extra threads only contend on a shared box
    try:
        torch.manual_seed(0)
        rng = random.Random(0)
        policy = load_policy(build_tiny_text_model(tmp_path / "m", seed=0), device="cpu")
        prompts = [
            policy.build_prompt([{"role": "user", "content": f"Copy the digit: {d}."}])
            for d in range(10)
        ]
        optimizer = torch.optim.AdamW(policy.model.parameters(), lr=3e-3)
        for _ in range(100):
            batch = [
                Sample(
                    rng.choice(prompts),
                    torch.tensor(
                        policy.tokenizer(
                            f"<answer>{rng.randrange(10)}</answer><|im_end|>",
                            add_special_tokens=False,
                        )["input_ids"]
                    ),
                )
                for _ in range(8)
            ]
            logp, mask, _ = policy.sequence_logprobs(batch)
            loss = -(logp * mask).sum() / mask.sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        def reward(text: str) -> float:
            answers = re.findall(r"<answer>(.*?)</answer>", text)
            return float(bool(answers) and answers[-1] == "7")

        engine = HFEngine(policy)
        optimizer = torch.optim.AdamW(policy.model.parameters(), lr=1e-3, weight_decay=0.01)
        group, means = 8, []
        for step in range(30):
            chosen = [rng.choice(prompts) for _ in range(8)]
            rollouts = engine.generate(chosen, group, max_new_tokens=8, temperature=1.0, seed=step)
            rewards = torch.tensor([reward(r.text) for r in rollouts])
            means.append(rewards.mean().item())
            advantages = batch_normalize(group_normalize(shape_rewards(rewards), group))
            logp, mask, _ = policy.sequence_logprobs(rollouts)
            loss, _ = policy_loss(logp, logp.detach(), advantages, mask)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.model.parameters(), 1.0)
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    first, last = sum(means[:5]) / 5, sum(means[-5:]) / 5
    assert first < 0.3
    assert last > first + 0.4, means
