"""The `hf` rollout engine on the tiny offline models (CPU), and engine selection."""

from __future__ import annotations

import os

# Set before transformers/huggingface_hub are imported: nothing may reach a hub.
os.environ["HF_HUB_OFFLINE"] = "1"

import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from trainer_client.errors import TrainerClientError
from trainer_client.policy import Policy, Sample, load_policy
from trainer_client.rollout import (
    ENGINES,
    HFEngine,
    make_engine,
    sampled_logprobs,
    trim_completion,
)
from trainer_client.tiny_models import build_tiny_text_model, build_tiny_vlm

TARGET = "<answer>7</answer>"


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    return load_policy(build_tiny_text_model(tmp_path_factory.mktemp("text")), device="cpu")


@pytest.fixture(scope="module")
def trained_policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    """A tiny model taught by a few supervised steps to answer TARGET and stop."""
    policy = load_policy(build_tiny_text_model(tmp_path_factory.mktemp("sft"), seed=2), "cpu")
    prompt = policy.build_prompt([{"role": "user", "content": "Copy 7"}])
    target = policy.tokenizer(TARGET + "<|im_end|>", add_special_tokens=False)["input_ids"]
    batch = [Sample(prompt, torch.tensor(target))]
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=1e-2)
    for _ in range(40):
        logp, mask, _ = policy.sequence_logprobs(batch)
        loss = -(logp * mask).sum() / mask.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return policy


def prompts_of(policy: Policy, *texts: str) -> list:
    return [policy.build_prompt([{"role": "user", "content": text}]) for text in texts]


@pytest.mark.parametrize(
    "row,expected,reason",
    [
        ([5, 6, 2, 0, 0], [5, 6, 2], "stop"),  # cut after EOS (kept), padding dropped
        ([2, 9, 9], [2], "stop"),  # immediate stop
        ([5, 3, 6, 2], [5, 3], "stop"),  # the first of several EOS ids wins
        ([5, 6, 0, 0], [5, 6, 0, 0], "length"),  # no EOS: every token was sampled
    ],
)
def test_trim_completion(row: list[int], expected: list[int], reason: str) -> None:
    ids, finish = trim_completion(torch.tensor(row), eos_ids=[2, 3])
    assert ids.tolist() == expected
    assert finish == reason


def test_rollouts_are_grouped_per_prompt(policy: Policy) -> None:
    prompts = prompts_of(policy, "Copy 7", "Copy the digit 3 in a longer prompt")
    rollouts = HFEngine(policy).generate(prompts, 3, max_new_tokens=6, temperature=1.0, seed=0)
    assert [r.prompt_index for r in rollouts] == [0, 0, 0, 1, 1, 1]
    for rollout in rollouts:
        assert rollout.prompt is prompts[rollout.prompt_index]
        assert rollout.completion_ids.dim() == 1 and rollout.completion_ids.dtype == torch.long
        assert 0 < len(rollout.completion_ids) <= 6
        ids = rollout.completion_ids
        body = ids[:-1] if rollout.finish_reason == "stop" else ids
        assert rollout.text == policy.tokenizer.decode(body, skip_special_tokens=True)
        if rollout.finish_reason == "length":
            assert len(ids) == 6


def test_seed_makes_rollouts_reproducible_without_touching_global_rng(policy: Policy) -> None:
    engine = make_engine("hf", policy)
    prompts = prompts_of(policy, "Copy 7")
    torch.manual_seed(123)
    a = engine.generate(prompts, 4, max_new_tokens=5, temperature=1.0, seed=7)
    after = torch.rand(1)
    torch.manual_seed(123)
    b = engine.generate(prompts, 4, max_new_tokens=5, temperature=1.0, seed=7)
    assert torch.rand(1) == after  # the global RNG stream is the same as without rollouts
    c = engine.generate(prompts, 4, max_new_tokens=5, temperature=1.0, seed=8)
    ids = [[r.completion_ids.tolist() for r in run] for run in (a, b, c)]
    assert ids[0] == ids[1]
    assert ids[0] != ids[2]


def test_checkpoint_sampling_defaults_are_not_applied(policy: Policy) -> None:
    # With the checkpoint's top_k=1 applied, every sample would be the greedy one.
    policy.model.generation_config.top_k = 1
    policy.model.generation_config.repetition_penalty = 5.0
    try:
        rollouts = HFEngine(policy).generate(
            prompts_of(policy, "Copy 7"), 6, max_new_tokens=6, temperature=1.0, seed=0
        )
    finally:
        policy.model.generation_config.top_k = None
        policy.model.generation_config.repetition_penalty = None
    assert len({tuple(r.completion_ids.tolist()) for r in rollouts}) > 1


def test_temperature_zero_is_greedy(policy: Policy) -> None:
    rollouts = HFEngine(policy).generate(
        prompts_of(policy, "Copy 7"), 3, max_new_tokens=5, temperature=0.0
    )
    assert len({tuple(r.completion_ids.tolist()) for r in rollouts}) == 1
    prompt = rollouts[0].prompt
    ids = prompt.input_ids[None]
    with torch.no_grad():
        first = int(policy.model(input_ids=ids).logits[0, -1].argmax())
    assert int(rollouts[0].completion_ids[0]) == first


def test_stops_at_eos_in_a_mixed_batch(trained_policy: Policy) -> None:
    prompts = prompts_of(trained_policy, "Copy 7", "something else entirely 99")
    rollouts = HFEngine(trained_policy).generate(prompts, 2, max_new_tokens=12, temperature=0.0)
    learned = rollouts[0]
    assert learned.finish_reason == "stop"
    assert learned.text == TARGET
    assert int(learned.completion_ids[-1]) in trained_policy.eos_token_ids
    # No EOS inside, nothing after it.
    eos = torch.tensor(trained_policy.eos_token_ids)
    assert not torch.isin(learned.completion_ids[:-1], eos).any()
    for rollout in rollouts:
        assert rollout.finish_reason in ("stop", "length")


def test_engine_restores_training_mode(policy: Policy) -> None:
    policy.model.train()
    HFEngine(policy).generate(prompts_of(policy, "x"), 1, max_new_tokens=2, temperature=1.0)
    assert policy.model.training
    policy.model.eval()


def test_vision_rollouts_with_and_without_images(tmp_path: Path) -> None:
    policy = load_policy(build_tiny_vlm(tmp_path / "vlm"), device="cpu")
    with_image = policy.build_prompt(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "digit?"}]}],
        [Image.new("RGB", (32, 32), "white")],
    )
    two_images = policy.build_prompt(
        [{"role": "user", "content": [{"type": "image"}, {"type": "image"}]}],
        [Image.new("RGB", (32, 32), "red"), Image.new("RGB", (16, 40), "blue")],
    )
    text_only = policy.build_prompt([{"role": "user", "content": "no image here"}])
    prompts = [with_image, text_only, two_images]
    rollouts = make_engine("hf", policy).generate(
        prompts, 2, max_new_tokens=4, temperature=1.0, seed=0
    )
    assert [r.prompt_index for r in rollouts] == [0, 0, 1, 1, 2, 2]
    # The rollouts feed straight back into the log-prob computation of the update.
    logp, mask, _ = policy.sequence_logprobs(rollouts)
    assert logp.shape[0] == 6
    assert mask.sum(dim=1).tolist() == [len(r.completion_ids) for r in rollouts]
    assert torch.isfinite(logp).all()


def test_greedy_rollout_matches_sequence_logprobs(policy: Policy) -> None:
    # Greedy tokens are the argmax of the same distribution sequence_logprobs scores.
    rollouts = HFEngine(policy).generate(
        prompts_of(policy, "Copy 7"), 1, max_new_tokens=4, temperature=0.0
    )
    logp, mask, _ = policy.sequence_logprobs(rollouts)
    prompt, ids = rollouts[0].prompt, rollouts[0].completion_ids
    with torch.no_grad():
        logits = policy.model(input_ids=torch.cat([prompt.input_ids, ids])[None]).logits[0]
    best = torch.log_softmax(logits[len(prompt) - 1 : -1], -1).max(-1).values
    torch.testing.assert_close(logp[0, : len(ids)].detach(), best, atol=1e-5, rtol=1e-5)


def test_make_engine_names(policy: Policy) -> None:
    assert set(ENGINES) == {"hf", "vllm"}
    assert isinstance(make_engine("hf", policy, batch_size=4), HFEngine)
    with pytest.raises(ValueError, match="hf, vllm"):
        make_engine("sglang", policy)


def test_vllm_engine_refuses_cpu_policy_before_importing_vllm(policy: Policy) -> None:
    had_vllm = "vllm" in sys.modules
    with pytest.raises(TrainerClientError, match="CUDA"):
        make_engine("vllm", policy)
    assert ("vllm" in sys.modules) == had_vllm


class Logprob:
    """The shape of vLLM's `Logprob` entries (`.logprob`, plus rank and token text)."""

    def __init__(self, logprob: float) -> None:
        self.logprob = logprob
        self.rank = 1


def test_sampled_logprobs_reads_vllm_entries() -> None:
    # With logprobs=0 vLLM gives each position the sampled token's entry (maybe others).
    entries = [{7: Logprob(-0.5)}, {3: Logprob(-1.25), 9: Logprob(-0.1)}]
    out = sampled_logprobs([7, 3], entries)
    assert out is not None and out.tolist() == [-0.5, -1.25]
    assert sampled_logprobs([7, 3], None) is None  # engine returned none: no behaviour policy


def test_sampled_logprobs_refuses_a_mismatch() -> None:
    with pytest.raises(ValueError, match="no log-prob for sampled token 4"):
        sampled_logprobs([7, 4], [{7: Logprob(-0.5)}, {3: Logprob(-1.0)}])
    with pytest.raises(ValueError, match="1 log-prob positions for 2 tokens"):
        sampled_logprobs([7, 4], [{7: Logprob(-0.5)}])
