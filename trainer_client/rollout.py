"""Rollout engines: sample `n` completions per prompt from the current policy.

One small interface, `RolloutEngine`, two implementations chosen by name (`make_engine`):

- `hf`: `HFEngine`, Hugging Face `model.generate` on the policy's own model object, so it
  always samples from the latest weights (`sync_weights` has nothing to do). Works on the
  CPU; the tests and the tiny demo use it.
- `vllm`: `VLLMEngine`, a vLLM engine colocated in the trainer's process on the same GPU.
  vLLM is an optional extra (`pip install 'reward-server[vllm]'`) imported only when this
  engine is built. It holds its own copy of the weights, so the trainer calls
  `sync_weights(policy)` after every optimizer step, which streams the policy's tensors into
  vLLM's model (`load_weights`, the same path vLLM loads a checkpoint with) and drops the
  prefix cache computed under the old weights.

Both sample with plain temperature / top-p sampling and nothing else (no top-k, no
repetition penalty from the checkpoint's generation config): GRPO's ratio assumes the
completions were drawn from the policy's own distribution at that temperature.

The vLLM engine also returns its sampler's log-probability of every completion token
(`Rollout.behav_logprobs`, from the distribution it sampled at, after temperature): the
behaviour policy of the recipe's decoupled loss. The HF engine samples from the training
model itself, so it reports none (the behaviour policy is the proximal one).

Results are grouped: prompt 0's `n` rollouts first, then prompt 1's, and so on, which is
the layout `grpo.group_normalize` expects. A completion keeps its EOS token when it
stopped (the model must learn to stop); `finish_reason` is "length" when it hit
`max_new_tokens` instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch

from trainer_client.data import Row
from trainer_client.errors import TrainerClientError
from trainer_client.policy import Policy, PromptInputs

FinishReason = Literal["stop", "length"]


@dataclass
class Rollout:
    """One sampled completion of one prompt."""

    prompt_index: int  # index into the `prompts` list given to `generate`
    prompt: PromptInputs
    completion_ids: torch.Tensor  # 1-D LongTensor on the CPU, EOS included when it stopped
    text: str  # decoded without special tokens: what the reward server scores
    finish_reason: FinishReason
    # The sampler's log-prob of each completion token (1-D float, CPU), when it reports one.
    behav_logprobs: torch.Tensor | None = None


def build_prompts(policy: Policy, rows: Sequence[Row]) -> list[PromptInputs]:
    """Model inputs of each row: the recipe's messages through the chat template/processor."""
    prompts = []
    for row in rows:
        images = row.load_images() if policy.is_vision else []
        prompts.append(policy.build_prompt(row.messages(policy.is_vision), images))
    return prompts


def sampled_logprobs(
    token_ids: Sequence[int], logprobs: Sequence[Mapping[int, Any]] | None
) -> torch.Tensor | None:
    """The sampled tokens' log-probs from vLLM's per-position `{token_id: Logprob}` maps.

    With `SamplingParams(logprobs=0)` each position's map holds the sampled token (and
    possibly others). None when the engine returned no log-probs; a position whose map
    lacks its token is an error, since a silently wrong behaviour policy biases the loss.
    """
    if logprobs is None:
        return None
    if len(logprobs) != len(token_ids):
        raise ValueError(f"{len(logprobs)} log-prob positions for {len(token_ids)} tokens")
    values = []
    for position, (token, entries) in enumerate(zip(token_ids, logprobs, strict=True)):
        if token not in entries:
            raise ValueError(f"position {position}: no log-prob for sampled token {token}")
        entry = entries[token]
        values.append(float(getattr(entry, "logprob", entry)))
    return torch.tensor(values, dtype=torch.float32)


class RolloutEngine(Protocol):
    def generate(
        self,
        prompts: list[PromptInputs],
        n: int,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> list[Rollout]: ...

    def sync_weights(self, policy: Policy) -> None: ...


def trim_completion(ids: torch.Tensor, eos_ids: list[int]) -> tuple[torch.Tensor, FinishReason]:
    """Cut a generated row after its first EOS (kept: the model must learn to stop).

    `generate` fills rows that stopped early with padding; those tokens were not sampled
    and must not be trained on. A row without EOS ran to `max_new_tokens` and is all
    sampled tokens (a padding id inside it was sampled too, so nothing is stripped).
    """
    ids = ids.reshape(-1).long().cpu()
    is_eos = torch.isin(ids, torch.tensor(eos_ids, dtype=torch.long))
    if bool(is_eos.any()):
        return ids[: int(is_eos.nonzero()[0]) + 1], "stop"
    return ids, "length"


def _completion_text(policy: Policy, ids: torch.Tensor, reason: FinishReason) -> str:
    return policy.decode(ids[:-1] if reason == "stop" else ids)


class HFEngine:
    """Sampling with `transformers`' `generate` on the policy's model (CPU or GPU)."""

    def __init__(self, policy: Policy, *, batch_size: int = 64) -> None:
        self.policy = policy
        self.batch_size = batch_size  # sequences per `generate` call

    def generate(
        self,
        prompts: list[PromptInputs],
        n: int,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> list[Rollout]:
        from transformers import GenerationConfig

        policy = self.policy
        sampling = temperature > 0
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=sampling,
            temperature=temperature if sampling else None,
            top_p=top_p if sampling else None,
            # Explicit neutral values: `generate` would otherwise take the checkpoint's own
            # sampling defaults (Qwen ships top_k=20 and a repetition penalty).
            top_k=0 if sampling else None,
            min_p=None,
            repetition_penalty=1.0,
            eos_token_id=policy.eos_token_ids,
            pad_token_id=policy.pad_token_id,
        )
        # Each prompt repeated n times: expanding inside `generate` is not safe for models
        # whose prompts carry different numbers of images.
        jobs = [(index, prompt) for index, prompt in enumerate(prompts) for _ in range(n)]
        rollouts: list[Rollout] = []
        was_training = policy.model.training
        policy.model.eval()
        try:
            with torch.random.fork_rng(devices=_cuda_devices(policy)):
                if seed is not None:
                    torch.manual_seed(seed)
                for start in range(0, len(jobs), self.batch_size):
                    rollouts += self._generate_batch(jobs[start : start + self.batch_size], config)
        finally:
            policy.model.train(was_training)
        return rollouts

    @torch.no_grad()
    def _generate_batch(self, jobs: list[tuple[int, PromptInputs]], config: Any) -> list[Rollout]:
        policy = self.policy
        inputs = policy.model_inputs([prompt for _, prompt in jobs], padding_side="left")
        width = inputs["input_ids"].shape[1]
        sequences = policy.model.generate(**inputs, generation_config=config)
        out = []
        for (index, prompt), row in zip(jobs, sequences[:, width:], strict=True):
            ids, reason = trim_completion(row, policy.eos_token_ids)
            out.append(Rollout(index, prompt, ids, _completion_text(policy, ids, reason), reason))
        return out

    def sync_weights(self, policy: Policy) -> None:
        """Nothing to copy: `generate` runs on the policy's own model object."""
        if policy.model is not self.policy.model:
            self.policy = policy


def _cuda_devices(policy: Policy) -> list[int]:
    return [policy.device.index or 0] if policy.device.type == "cuda" else []


def _load_weights_into_worker(worker: Any, weights: list[tuple[str, torch.Tensor]]) -> None:
    """Runs inside vLLM's worker (same process when colocated): load HF-named tensors."""
    runner = worker.model_runner
    model = runner.get_model() if hasattr(runner, "get_model") else runner.model
    model.load_weights(weights=weights)


class VLLMEngine:
    """A vLLM engine colocated with the trainer on one GPU, weights synced after each step.

    `gpu_memory_utilization` is the share of GPU memory vLLM may take for its weights and KV
    cache; the rest is left to training (the recipe's colocated setup). With
    `sleep_between_rollouts`, vLLM frees its KV cache and offloads weights while the trainer
    updates (vLLM sleep mode level 1) and wakes up before the next rollout.

    `logprobs_mode="processed_logprobs"` (vLLM 0.10.2 and newer) makes the reported
    log-probs those of the distribution sampled from (after temperature), as the decoupled
    loss needs; pass `logprobs_mode: null` in `engine_options` on an older vLLM, which
    reports the raw model's (the same at the recipe's temperature 1.0).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        gpu_memory_utilization: float = 0.3,
        max_model_len: int | None = None,
        enforce_eager: bool = False,
        sleep_between_rollouts: bool = False,
        trust_remote_code: bool = False,
        logprobs_mode: str | None = "processed_logprobs",
    ) -> None:
        if policy.device.type != "cuda":
            raise TrainerClientError("the vllm engine needs the policy on a CUDA GPU",
                                     "use the hf engine (--engine hf / rollout_engine: hf)")
        # Run vLLM's engine core in this process so `collective_rpc` can hand it the
        # policy's tensors directly instead of serialising them to a subprocess.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        try:
            import vllm  # type: ignore[import-not-found]  # optional extra
        except ImportError as exc:
            raise TrainerClientError(
                "the vllm rollout engine needs vLLM, which is not installed",
                "pip install 'reward-server[vllm]' on a GPU machine, or use the hf engine",
            ) from exc
        self._vllm = vllm
        self.policy = policy
        self.sleep_between_rollouts = sleep_between_rollouts
        extra: dict[str, Any] = {"limit_mm_per_prompt": {"image": 16}} if policy.is_vision else {}
        if logprobs_mode is not None:
            # Log-probs of the distribution actually sampled (after temperature), not of
            # the raw logits: they are the behaviour policy of the decoupled loss.
            extra["logprobs_mode"] = logprobs_mode
        self.llm = vllm.LLM(
            model=policy.name_or_path,
            dtype=str(policy.dtype).removeprefix("torch."),
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enforce_eager=enforce_eager,
            enable_sleep_mode=sleep_between_rollouts,
            trust_remote_code=trust_remote_code,
            # vLLM's own neutral sampling defaults, not the checkpoint's generation_config.json
            # (top-k, repetition penalty): see the module docstring.
            generation_config="vllm",
            **extra,
        )
        # The checkpoint on disk may be older than the policy in memory (resume, stage 2).
        self.sync_weights(policy)

    def generate(
        self,
        prompts: list[PromptInputs],
        n: int,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> list[Rollout]:
        if self.sleep_between_rollouts:
            self.llm.wake_up()
            self._push_weights()
        params = [
            self._vllm.SamplingParams(
                n=n,
                temperature=temperature,
                top_p=top_p,
                max_tokens=max_new_tokens,
                repetition_penalty=1.0,
                seed=None if seed is None else seed + index,
                skip_special_tokens=True,
                logprobs=0,  # the sampled token's log-prob only
            )
            for index in range(len(prompts))
        ]
        outputs = self.llm.generate([self._request(p) for p in prompts], params, use_tqdm=False)
        rollouts: list[Rollout] = []
        for index, (prompt, output) in enumerate(zip(prompts, outputs, strict=True)):
            for completion in output.outputs:
                token_ids = list(completion.token_ids)
                ids = torch.tensor(token_ids, dtype=torch.long)
                reason: FinishReason = "length" if completion.finish_reason == "length" else "stop"
                text = _completion_text(self.policy, ids, reason)
                behav = sampled_logprobs(token_ids, completion.logprobs)
                rollouts.append(Rollout(index, prompt, ids, text, reason, behav))
        if self.sleep_between_rollouts:
            self.llm.sleep(level=1)
        return rollouts

    def _request(self, prompt: PromptInputs) -> dict[str, Any]:
        if prompt.images:
            # vLLM runs the model's own processor on the rendered text and the raw images,
            # which expands the placeholders exactly as `Policy.build_prompt` did.
            return {"prompt": prompt.text, "multi_modal_data": {"image": prompt.images}}
        return {"prompt_token_ids": prompt.input_ids.tolist()}

    def sync_weights(self, policy: Policy) -> None:
        """Copy the policy's current weights into vLLM (call after every optimizer step)."""
        self.policy = policy
        if self.sleep_between_rollouts:
            return  # pushed on wake-up, when vLLM's weight memory exists again
        self._push_weights()

    def _push_weights(self) -> None:
        weights = [
            (name, tensor.detach()) for name, tensor in self.policy.model.state_dict().items()
        ]
        self.llm.collective_rpc(_load_weights_into_worker, args=(weights,))
        self.llm.reset_prefix_cache()


ENGINES: dict[str, Callable[..., RolloutEngine]] = {"hf": HFEngine, "vllm": VLLMEngine}


def make_engine(name: str, policy: Policy, **options: Any) -> RolloutEngine:
    """Build the engine called `name` (one of `ENGINES`) for `policy`."""
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ValueError(
            f"unknown rollout engine {name!r}; choose one of {', '.join(ENGINES)}"
        ) from None
    return factory(policy, **options)
