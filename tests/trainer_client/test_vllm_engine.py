"""The colocated vLLM rollout engine: needs a CUDA GPU and the `vllm` extra.

Marked `gpu`: the default test command deselects it with `-m "not gpu"`; on a GPU machine
with `pip install -e '.[trainer,vllm,dev]'` run `pytest -m gpu tests/trainer_client`.
It is not skipped when selected: without a GPU or vLLM it fails, saying what is missing.
"""

from __future__ import annotations

import os

# Set before transformers/huggingface_hub are imported: nothing may reach a hub.
os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path

import pytest
import torch
from PIL import Image

from trainer_client.policy import Policy, load_policy
from trainer_client.rollout import HFEngine, VLLMEngine, make_engine
from trainer_client.tiny_models import build_tiny_text_model, build_tiny_vlm

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu_policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    assert torch.cuda.is_available(), "this test needs a CUDA GPU"
    return load_policy(build_tiny_text_model(tmp_path_factory.mktemp("text")), device="cuda")


@pytest.fixture(scope="module")
def engine(gpu_policy: Policy) -> VLLMEngine:
    built = make_engine("vllm", gpu_policy, gpu_memory_utilization=0.2, enforce_eager=True)
    assert isinstance(built, VLLMEngine)
    return built


def test_policy_is_bf16_on_gpu(gpu_policy: Policy) -> None:
    assert gpu_policy.dtype == torch.bfloat16
    assert next(gpu_policy.model.parameters()).is_cuda


def test_vllm_rollouts_are_grouped(gpu_policy: Policy, engine: VLLMEngine) -> None:
    prompts = [
        gpu_policy.build_prompt([{"role": "user", "content": text}])
        for text in ("Copy 7", "Copy the digit 3 in a longer prompt")
    ]
    rollouts = engine.generate(prompts, 4, max_new_tokens=8, temperature=1.0, seed=0)
    assert [r.prompt_index for r in rollouts] == [0] * 4 + [1] * 4
    for rollout in rollouts:
        assert 0 < len(rollout.completion_ids) <= 8
        assert rollout.finish_reason in ("stop", "length")
        if rollout.finish_reason == "length":
            assert len(rollout.completion_ids) == 8
    again = engine.generate(prompts, 4, max_new_tokens=8, temperature=1.0, seed=0)
    assert [r.completion_ids.tolist() for r in rollouts] == [
        r.completion_ids.tolist() for r in again
    ]
    # vLLM's completions score under the HF policy like any other rollout.
    logp, mask, _ = gpu_policy.sequence_logprobs(rollouts)
    assert torch.isfinite(logp[mask]).all()


def test_sync_weights_reaches_vllm(gpu_policy: Policy, engine: VLLMEngine) -> None:
    prompts = [gpu_policy.build_prompt([{"role": "user", "content": "Copy 7"}])]
    before = engine.generate(prompts, 1, max_new_tokens=6, temperature=0.0)[0]
    # A zero final norm makes every logit 0, so greedy decoding picks token id 0 each time:
    # an output no random model produces by chance, and only vLLM with new weights shows.
    with torch.no_grad():
        gpu_policy.model.model.norm.weight.zero_()
    stale = engine.generate(prompts, 1, max_new_tokens=6, temperature=0.0)[0]
    assert stale.completion_ids.tolist() == before.completion_ids.tolist()
    engine.sync_weights(gpu_policy)
    after = engine.generate(prompts, 1, max_new_tokens=6, temperature=0.0)[0]
    assert after.completion_ids.tolist() == [0] * 6
    assert before.completion_ids.tolist() != [0] * 6
    hf = HFEngine(gpu_policy).generate(prompts, 1, max_new_tokens=6, temperature=0.0)[0]
    assert hf.completion_ids.tolist() == after.completion_ids.tolist()


def test_vllm_vision_rollouts(tmp_path: Path) -> None:
    policy = load_policy(build_tiny_vlm(tmp_path / "vlm"), device="cuda")
    engine = make_engine("vllm", policy, gpu_memory_utilization=0.2, enforce_eager=True)
    prompt = policy.build_prompt(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "digit?"}]}],
        [Image.new("RGB", (32, 32), "red")],
    )
    rollouts = engine.generate([prompt], 3, max_new_tokens=5, temperature=1.0, seed=1)
    assert [r.prompt_index for r in rollouts] == [0, 0, 0]
    logp, mask, _ = policy.sequence_logprobs(rollouts)
    assert torch.isfinite(logp[mask]).all()


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_vllm_reports_the_sampled_distribution_logprobs(
    gpu_policy: Policy, engine: VLLMEngine, temperature: float
) -> None:
    prompts = [gpu_policy.build_prompt([{"role": "user", "content": "Copy the digit: 4."}])]
    rollouts = engine.generate(prompts, 8, max_new_tokens=8, temperature=temperature, seed=3)
    for rollout in rollouts:
        assert rollout.behav_logprobs is not None
        assert rollout.behav_logprobs.shape == rollout.completion_ids.shape
    # The behaviour policy of the decoupled loss: vLLM's log-probs at the sampling
    # temperature agree with the training model's up to bf16 numerics.
    logp, mask, _ = gpu_policy.sequence_logprobs(rollouts, temperature=temperature)
    behav = torch.zeros_like(logp)
    for i, rollout in enumerate(rollouts):
        behav[i, : len(rollout.behav_logprobs)] = rollout.behav_logprobs.to(behav.device)
    gap = (logp - behav)[mask].abs()
    assert float(gap.mean()) < 0.05, gap


def test_a_vllm_training_step_uses_the_decoupled_loss(
    reward_server: str, warm_model: Path, demo_data: dict[str, Path], tmp_path: Path
) -> None:
    from trainer_client.config import load_config
    from trainer_client.metrics import read_metrics
    from trainer_client.train import train

    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "configs" / "tiny-stage1.yaml", 1, overrides=[
        f"model={warm_model}", f"data=[{demo_data['stage1']}]", f"output_dir={tmp_path}",
        f"reward_url={reward_server}", "eval_data=[]", "device=cuda", "rollout_engine=vllm",
        "engine_options={gpu_memory_utilization: 0.2, enforce_eager: true}", "total_steps=2",
    ])
    train(config, progress=False)
    for record in read_metrics(tmp_path):
        # sampler and trainer are the same weights: weights near 1, almost none over 5
        assert 0.8 < record["behav_weight_mean"] < 1.25, record
        assert record["behav_filtered_fraction"] < 0.05, record
