"""GRPO math: reward shaping, group/batch advantages, token log-probs and the clipped loss.

Every function here is a small pure torch function (no model, no I/O) so each can be
unit-tested on hand-made tensors. The training loop composes them in this order:

1. ``shape_rewards``: ``(r - bias) * scale`` with the recipe's defaults bias 0.5, scale 10
   (RECIPE.md, "Reward shaping before advantages").
2. ``group_normalize``: per prompt group of ``group_size`` rollouts,
   ``(r - mean_g) / (std_g + eps)`` -- the group-relative baseline of GRPO (Shao et al.
   2024, "DeepSeekMath", outcome supervision). ``std_g`` is the unbiased sample std, as in
   TRL's ``GRPOTrainer``. Groups whose rewards are all equal get advantage 0 and are
   reported by ``zero_signal_groups``.
3. Batch normalization of the advantages, in one of two forms:
   ``token_batch_normalize`` is the recipe's (AReaL's ``adv_norm`` with batch mean and
   batch std, ``masked_normalization``): every completion TOKEN of every trained sample
   counts once, zero-signal groups (advantage 0) included, with the biased variance and
   ``eps = 1e-5``. ``batch_normalize`` whitens one value per SAMPLE over the entries a
   mask selects; over informative groups only it is close to a no-op after group
   normalization (it rescales by about ``sqrt(n / (n - 1))``).
4. ``policy_loss``: PPO-style clipped surrogate with asymmetric clip range
   ``[1 - clip_low, 1 + clip_high]`` = ``[0.8, 1.28]`` ("clip-higher", Yu et al. 2025,
   "DAPO"), token-level aggregation: the sum over every valid completion token of the
   batch divided by the number of those tokens (not a per-sequence mean first), and an
   optional KL penalty to a frozen reference policy using the non-negative ``k3``
   estimator ``exp(ref - logp) - (ref - logp) - 1`` (Schulman, "Approximating KL
   Divergence", 2020). The recipe runs without KL (``kl_coef = 0``). With the
   behaviour policy's own log-probs (those the sampler reported, e.g. vLLM's), each
   token's surrogate is multiplied by ``behaviour_weights``: ``exp(old - behav)``, the
   importance weight of the proximal policy (the training model before the update) over
   the one that sampled, with tokens whose weight exceeds the cap (5 in the recipe)
   filtered out (weight 0): AReaL's decoupled PPO loss (``use_decoupled_loss``,
   ``behav_imp_weight_cap``; Fu et al. 2025, "AReaL").
5. ``warmup_factor``: the learning-rate multiplier of a constant schedule with linear
   warm-up over ``warmup_steps(total, 0.001)`` optimizer steps (AReaL's ``constant``
   scheduler, ``warmup_steps_proportion: 0.001``).

Rewards of items the reward server could not score (status ``timeout``/``error``) must not
be read as 0: pass ``valid=False`` for them; they are left out of every mean and std and
get advantage 0.
"""

from __future__ import annotations

import torch
from torch import Tensor


def shape_rewards(rewards: Tensor, bias: float = 0.5, scale: float = 10.0) -> Tensor:
    """Return ``(rewards - bias) * scale`` (RECIPE.md defaults: 0.5 and 10)."""
    return (rewards - bias) * scale


def _grouped(values: Tensor, group_size: int) -> Tensor:
    """View a flat ``[G * group_size]`` tensor as ``[G, group_size]``, checking the shape."""
    if values.dim() != 1:
        raise ValueError(f"expected a 1-D tensor of rewards, got shape {tuple(values.shape)}")
    if group_size < 1 or values.numel() % group_size:
        raise ValueError(
            f"{values.numel()} rewards do not split into groups of {group_size}; "
            "pass group_size = rollouts per prompt and keep every group complete"
        )
    return values.view(-1, group_size)


def _valid_grouped(rewards: Tensor, group_size: int, valid: Tensor | None) -> Tensor:
    if valid is None:
        return torch.ones_like(_grouped(rewards, group_size), dtype=torch.bool)
    if valid.shape != rewards.shape:
        raise ValueError(f"valid has shape {tuple(valid.shape)}, rewards {tuple(rewards.shape)}")
    return _grouped(valid.bool(), group_size)


def group_normalize(
    rewards: Tensor, group_size: int, eps: float = 1e-6, *, valid: Tensor | None = None
) -> Tensor:
    """Group-relative advantages ``(r - mean_g) / (std_g + eps)``, one value per rollout.

    ``rewards`` is flat and grouped: prompt 0's ``group_size`` rollouts first, then prompt
    1's, and so on (the order ``RolloutEngine.generate`` returns). ``valid`` (bool, same
    shape) marks rewards that were actually scored; the others are left out of their
    group's statistics and get 0. A group with fewer than two valid rewards, or whose
    valid rewards are all equal, has no signal and gets 0 everywhere.
    """
    r = _grouped(rewards.float(), group_size)
    ok = _valid_grouped(rewards, group_size, valid)
    okf = ok.float()
    count = okf.sum(dim=1, keepdim=True)
    mean = (r * okf).sum(dim=1, keepdim=True) / count.clamp(min=1)
    centred = (r - mean) * okf
    # Unbiased sample std over the valid members (Bessel's correction, as torch.std).
    var = centred.pow(2).sum(dim=1, keepdim=True) / (count - 1).clamp(min=1)
    adv = centred / (var.sqrt() + eps)
    adv = torch.where(count >= 2, adv, torch.zeros_like(adv))
    return adv.view(-1)


def zero_signal_groups(rewards: Tensor, group_size: int, *, valid: Tensor | None = None) -> Tensor:
    """Bool ``[num_groups]``: True where a group's (valid) rewards are all equal.

    Such groups give every rollout advantage 0, so they cost rollout time and teach nothing;
    the recipe's curation exists to make them rare, and the trainer logs their count. A
    group with no valid reward at all counts as zero-signal too.
    """
    r = _grouped(rewards, group_size)
    ok = _valid_grouped(rewards, group_size, valid)
    high = torch.where(ok, r, torch.full_like(r, -torch.inf)).amax(dim=1)
    low = torch.where(ok, r, torch.full_like(r, torch.inf)).amin(dim=1)
    return ~(high > low)


def batch_normalize(adv: Tensor, mask: Tensor | None = None, eps: float = 1e-6) -> Tensor:
    """Whiten advantages over the batch: ``(a - mean) / (std + eps)``.

    ``mask`` (bool or 0/1, same shape) selects the entries that take part; the others are
    returned as 0 so that excluded rollouts never push the policy. Uses the unbiased std
    like ``group_normalize``; with fewer than two entries only the mean is removed.
    """
    a = adv.float()
    m = torch.ones_like(a) if mask is None else mask.to(a.dtype)
    if m.shape != a.shape:
        raise ValueError(f"mask has shape {tuple(m.shape)}, advantages {tuple(a.shape)}")
    count = m.sum()
    mean = (a * m).sum() / count.clamp(min=1)
    centred = (a - mean) * m
    if count < 2:
        return centred
    std = (centred.pow(2).sum() / (count - 1)).sqrt()
    return centred / (std + eps)


def token_batch_normalize(
    adv: Tensor, lengths: Tensor, mask: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    """Whiten per-sample advantages over the batch's TOKENS (the recipe's ``adv_norm``).

    Each sample's advantage is broadcast over its ``lengths[i]`` completion tokens, and
    the mean and the (biased) std are taken over every token of every entry ``mask``
    selects, zero-signal samples (advantage 0) included::

        w_i  = lengths_i * mask_i
        mean = sum(w * a) / sum(w)
        var  = sum(w * (a - mean)^2) / sum(w)
        out  = (a - mean) / (sqrt(var) + eps)

    Entries outside ``mask`` (and samples with no token) are returned as 0.
    """
    a = adv.double()
    w = lengths.to(a.dtype)
    if mask is not None:
        if mask.shape != a.shape:
            raise ValueError(f"mask has shape {tuple(mask.shape)}, advantages {tuple(a.shape)}")
        w = w * mask.to(a.dtype)
    if w.shape != a.shape:
        raise ValueError(f"lengths has shape {tuple(lengths.shape)}, advantages {tuple(a.shape)}")
    total = w.sum()
    if total <= 0:
        return torch.zeros_like(adv, dtype=torch.float32)
    mean = (w * a).sum() / total
    var = (w * (a - mean).pow(2)).sum() / total
    out = (a - mean) / (var.sqrt() + eps)
    return torch.where(w > 0, out, torch.zeros_like(out)).float()


def behaviour_weights(
    old_logp: Tensor, behav_logp: Tensor, mask: Tensor, cap: float | None = 5.0
) -> Tensor:
    """Per-token importance weights ``exp(old_logp - behav_logp)`` of the decoupled loss.

    ``old_logp`` are the proximal policy's log-probs (the training model before this
    update), ``behav_logp`` those of the policy that sampled the tokens (the rollout
    engine's). A token whose weight exceeds ``cap`` is filtered out (weight 0), as AReaL's
    ``behav_imp_weight_cap`` does; so are padding tokens. ``cap=None`` keeps every weight.
    """
    weights = (old_logp.detach() - behav_logp.detach()).exp()
    keep = mask.bool()
    if cap is not None:
        keep = keep & (weights <= cap)
    return torch.where(keep, weights, torch.zeros_like(weights))


def warmup_steps(total_steps: int, proportion: float) -> int:
    """Optimizer steps of linear warm-up: ``int(proportion * total_steps)``, as AReaL."""
    return int(proportion * total_steps)


def warmup_factor(step: int, warmup: int) -> float:
    """Learning-rate multiplier at optimizer step ``step`` (0-based) of a constant schedule
    with ``warmup`` steps of linear warm-up: ``step / warmup`` during it, then 1."""
    if step < warmup:
        return step / max(1, warmup)
    return 1.0


def token_logprobs(logits: Tensor, targets: Tensor) -> Tensor:
    """``log p(targets[..., t])`` under ``logits[..., t, :]``, computed in float32.

    ``logits`` is ``[..., T, V]`` already aligned with ``targets`` ``[..., T]`` (the caller
    shifts by one). Gathering the target logit and subtracting the log-sum-exp avoids
    materialising a second ``[..., T, V]`` tensor of log-probabilities.
    """
    logits = logits.float()
    picked = logits.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def token_entropy(logits: Tensor) -> Tensor:
    """Entropy of the next-token distribution at every position, ``[..., T]``, in nats."""
    logits = logits.float()
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    ref_logp: Tensor | None = None,
    kl_coef: float = 0.0,
    num_tokens: int | None = None,
    behav_logp: Tensor | None = None,
    behav_weight_cap: float | None = 5.0,
) -> tuple[Tensor, dict[str, float]]:
    """Token-level clipped GRPO loss and its statistics.

    Shapes: ``logp``, ``old_logp``, ``mask`` (and ``ref_logp``) are ``[B, T]`` over
    completion tokens; ``advantages`` is ``[B]`` (one per sequence, broadcast over its
    tokens) or ``[B, T]``. Per token::

        ratio = exp(logp - old_logp)
        pg    = max(-A * ratio, -A * clamp(ratio, 1 - clip_low, 1 + clip_high))
        pg    = pg * behaviour_weights(old_logp, behav_logp, mask, behav_weight_cap)
                                               (only when behav_logp is given)
        loss  = pg + kl_coef * k3(ref_logp, logp)

    The returned loss is ``sum(loss * mask) / N`` with ``N = num_tokens`` when given (the
    number of valid tokens in the WHOLE batch, so that micro-batch losses summed by
    gradient accumulation equal the full-batch loss), else ``mask.sum()``.

    Stats (plain floats, means over this call's valid tokens): ``clip_fraction`` (share of
    tokens whose clipped term was the active one), ``approx_kl`` (k3 estimate of
    KL(old || new), ``ratio - 1 - log ratio``: how far the update drifted from the rollout
    policy), ``ratio_mean``, and ``kl_ref`` when a
    reference is given.
    """
    if logp.shape != old_logp.shape or logp.shape != mask.shape:
        raise ValueError(
            f"logp {tuple(logp.shape)}, old_logp {tuple(old_logp.shape)} and mask "
            f"{tuple(mask.shape)} must have the same [B, T] shape"
        )
    m = mask.to(logp.dtype)
    adv = advantages.to(logp.dtype)
    if adv.dim() == 1:
        adv = adv.unsqueeze(-1)

    log_ratio = logp - old_logp.detach()
    ratio = log_ratio.exp()
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    per_token = torch.maximum(unclipped, clipped)
    behav_w: Tensor | None = None
    if behav_logp is not None:
        if behav_logp.shape != logp.shape:
            raise ValueError(f"behav_logp {tuple(behav_logp.shape)} must match logp's shape")
        behav_w = behaviour_weights(old_logp, behav_logp, mask, behav_weight_cap)
        per_token = per_token * behav_w

    kl_ref: Tensor | None = None
    if ref_logp is not None:
        delta = ref_logp.detach() - logp
        kl_ref = delta.exp() - delta - 1.0
        if kl_coef:
            per_token = per_token + kl_coef * kl_ref

    local_tokens = m.sum()
    denominator = float(num_tokens) if num_tokens is not None else local_tokens.clamp(min=1)
    loss = (per_token * m).sum() / denominator

    with torch.no_grad():
        n = local_tokens.clamp(min=1)
        stats = {
            "clip_fraction": float(((clipped > unclipped).to(m.dtype) * m).sum() / n),
            "approx_kl": float(((ratio - 1.0 - log_ratio) * m).sum() / n),
            "ratio_mean": float((ratio * m).sum() / n),
        }
        if kl_ref is not None:
            stats["kl_ref"] = float((kl_ref * m).sum() / n)
        if behav_w is not None:
            kept = (behav_w > 0).to(m.dtype) * m
            stats["behav_weight_mean"] = float((behav_w * kept).sum() / kept.sum().clamp(min=1))
            stats["behav_filtered_fraction"] = float(((1 - kept) * m).sum() / n)
    return loss, stats
