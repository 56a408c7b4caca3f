"""The policy: a Hugging Face model with its tokenizer or processor, as the trainer uses it.

Contract:

- `load_policy(name_or_path, device=None, trust_remote_code=, dtype=, attn_implementation=)`
  loads a text-only model with `AutoModelForCausalLM` + `AutoTokenizer`, or a
  vision-language model with `AutoModelForImageTextToText` + `AutoProcessor` (chosen from
  the checkpoint's config), by default in bfloat16 on a GPU and float32 on the CPU.
- `Policy.build_prompt(messages, images)` renders the chat with the model's own chat template
  (`add_generation_prompt=True`) and runs the tokenizer or processor, so image placeholders
  are expanded exactly as the model expects. It returns a `PromptInputs`: the prompt token
  ids (1-D), the processor's vision tensors (`pixel_values`, `image_grid_thw`, ...), and the
  rendered text and raw images (engines such as vLLM run their own processor on those).
- `Policy.sequence_logprobs(batch)` returns the log-probabilities of the completion tokens
  of each `(prompt, completion_ids)` pair under the current weights, with gradients:
  ``logp[i, t] = log softmax(logits / temperature)[completion_i[t]]`` at the position that
  predicts that token. Rows are right-padded to the longest completion; `mask` marks real
  tokens. The same function computes the "old" log-probs of GRPO (under `torch.no_grad`
  before the update) so that the clipping ratio compares like with like.

Sequences are laid out ``[prompt | completion | padding]`` with right padding only, so every
row's positions start at 0 exactly as during generation; only the logits from the shortest
prompt onwards are materialised (`logits_to_keep`), which matters with image tokens.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
from PIL import Image

from trainer_client.errors import ModelLoadError
from trainer_client.grpo import token_entropy, token_logprobs

# Processor outputs that run along the token axis (one value per prompt token): they are
# padded and extended over the completion like `input_ids` instead of being concatenated
# along the image axis like `pixel_values`.
TOKEN_ALIGNED_KEYS = ("token_type_ids", "mm_token_type_ids")


@dataclass
class PromptInputs:
    """One rendered prompt, ready for generation and for log-prob computation."""

    input_ids: torch.Tensor  # 1-D LongTensor, chat template applied, image tokens expanded
    vision: dict[str, torch.Tensor] = field(default_factory=dict)  # processor extras, batch 1
    text: str = ""  # the rendered chat template (image placeholders not expanded)
    images: list[Image.Image] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.input_ids.numel())


class Sample(NamedTuple):
    """A prompt and one sampled completion (token ids, 1-D, EOS included when it stopped)."""

    prompt: PromptInputs
    completion_ids: torch.Tensor


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def model_family(config: Any) -> tuple[Literal["image-text-to-text", "causal-lm"], bool]:
    """Which Auto class loads a checkpoint, and whether it takes images (needs a processor).

    A model type that `AutoModelForImageTextToText` serves, or a remote-code checkpoint that
    maps that class, loads with it. Some remote-code vision-language checkpoints map only
    `AutoModelForCausalLM`; a `vision_config` in their config still marks them as taking
    images, so they get their `AutoProcessor`.
    """
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    auto_map = getattr(config, "auto_map", None) or {}
    if (
        config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
        or "AutoModelForImageTextToText" in auto_map
    ):
        return "image-text-to-text", True
    return "causal-lm", getattr(config, "vision_config", None) is not None


@dataclass
class Policy:
    """A loaded model plus what is needed to prompt it and score its tokens."""

    model: Any  # transformers.PreTrainedModel
    tokenizer: Any  # transformers tokenizer (the processor's own for a VLM)
    processor: Any | None  # transformers processor; None for a text-only model
    name_or_path: str
    device: torch.device
    dtype: torch.dtype

    @property
    def is_vision(self) -> bool:
        return self.processor is not None

    @property
    def generation_config(self) -> Any:
        return self.model.generation_config

    @property
    def eos_token_ids(self) -> list[int]:
        """Every id that ends a completion: the generation config's and the tokenizer's."""
        ids = self.generation_config.eos_token_id
        found = [ids] if isinstance(ids, int) else list(ids or [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in found:
            found.append(self.tokenizer.eos_token_id)
        return found

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self.eos_token_ids[0]

    def decode(self, completion_ids: torch.Tensor | list[int]) -> str:
        """Completion text as the reward server sees it (special tokens dropped)."""
        return self.tokenizer.decode(completion_ids, skip_special_tokens=True)

    def build_prompt(
        self, messages: list[dict[str, Any]], images: list[Image.Image] | None = None
    ) -> PromptInputs:
        """Apply the chat template (with the generation prompt) and tokenize/process.

        `messages` are Hugging Face chat messages; for a vision-language model the user
        content is a list of `{"type": "image"}` / `{"type": "text", "text": ...}` parts, one
        image part per entry of `images`, in order.
        """
        images = list(images or [])
        slots = sum(
            1
            for message in messages
            if isinstance(message.get("content"), list)
            for part in message["content"]
            if part.get("type") == "image"
        )
        if images and not self.is_vision:
            raise ValueError(
                f"{self.name_or_path} is a text-only model but the prompt has {len(images)} "
                "image(s); use a vision-language model or leave image rows out"
            )
        if slots != len(images):
            raise ValueError(
                f"the messages have {slots} image part(s) but {len(images)} image(s) were given"
            )
        renderer = self.processor if self.processor is not None else self.tokenizer
        text = renderer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if self.processor is not None:
            encoded = self.processor(
                text=[text], images=images or None, return_tensors="pt", add_special_tokens=False
            )
        else:
            encoded = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        vision = {
            key: value
            for key, value in encoded.items()
            if key not in ("input_ids", "attention_mask") and isinstance(value, torch.Tensor)
        }
        return PromptInputs(
            input_ids=encoded["input_ids"][0], vision=vision, text=text, images=images
        )

    def model_inputs(
        self,
        prompts: list[PromptInputs],
        suffixes: list[torch.Tensor] | None = None,
        *,
        padding_side: Literal["left", "right"] = "right",
    ) -> dict[str, torch.Tensor]:
        """Collate prompts (each followed by its suffix tokens, if given) into model kwargs.

        Vision tensors are concatenated along their first (image/patch) axis in prompt
        order, which is how processors batch them; token-aligned extras are padded with 0.
        """
        suffixes = suffixes or [torch.empty(0, dtype=torch.long)] * len(prompts)
        rows = [
            torch.cat([p.input_ids, s.to(p.input_ids.device)])
            for p, s in zip(prompts, suffixes, strict=True)
        ]
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        extras: dict[str, list[torch.Tensor]] = {}
        aligned: dict[str, torch.Tensor] = {}
        for i, (row, prompt) in enumerate(zip(rows, prompts, strict=True)):
            cols = slice(0, len(row)) if padding_side == "right" else slice(width - len(row), width)
            input_ids[i, cols] = row
            attention_mask[i, cols] = 1
            for key, value in prompt.vision.items():
                if key in TOKEN_ALIGNED_KEYS:
                    target = aligned.setdefault(
                        key, torch.zeros((len(rows), width), dtype=value.dtype)
                    )
                    target[i, cols][: value.shape[-1]] = value.reshape(-1)
                else:
                    extras.setdefault(key, []).append(value)
        inputs: dict[str, torch.Tensor] = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            **aligned,
            **{key: torch.cat(values, dim=0) for key, values in extras.items()},
        }
        return {key: self._to_device(value) for key, value in inputs.items()}

    def _to_device(self, value: torch.Tensor) -> torch.Tensor:
        if value.is_floating_point():
            return value.to(self.device, dtype=self.dtype)
        return value.to(self.device)

    def sequence_logprobs(
        self,
        batch: list[Sample] | list[Any],
        with_entropy: bool = False,
        *,
        temperature: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Log-probs of each completion token, `[B, T]` right-padded, with gradients.

        `batch` holds `Sample(prompt, completion_ids)` pairs or anything with `.prompt` and
        `.completion_ids` (a `Rollout`). Returns `(logp, mask, entropy)`; `mask` is a bool
        `[B, T]`; `entropy` (no gradient, for logging) is None unless `with_entropy`.
        `temperature` divides the logits, matching the sampling distribution.
        """
        pairs = [
            (item.prompt, item.completion_ids) if hasattr(item, "completion_ids") else item
            for item in batch
        ]
        prompts = [prompt for prompt, _ in pairs]
        completions = [completion.reshape(-1).long().cpu() for _, completion in pairs]
        inputs: dict[str, Any] = self.model_inputs(prompts, completions, padding_side="right")
        width = inputs["input_ids"].shape[1]
        prompt_lens = torch.tensor([len(p) for p in prompts])
        lengths = torch.tensor([len(c) for c in completions])
        steps = max(int(lengths.max()), 1)
        # Only positions from the shortest prompt's last token onwards predict completions.
        keep = width - int(prompt_lens.min()) + 1
        if _accepts(self.model, "logits_to_keep"):
            inputs["logits_to_keep"] = keep
        logits = self.model(**inputs, use_cache=False).logits
        offset = width - logits.shape[1]  # absolute position of logits[:, 0]
        t = torch.arange(steps)
        positions = (prompt_lens[:, None] - 1 + t[None, :] - offset).clamp(0, logits.shape[1] - 1)
        positions = positions.to(logits.device)
        picked = logits.gather(1, positions[..., None].expand(-1, -1, logits.shape[-1]))
        if temperature != 1.0:
            picked = picked / temperature
        targets = torch.zeros((len(pairs), steps), dtype=torch.long)
        for i, completion in enumerate(completions):
            targets[i, : len(completion)] = completion
        mask = (t[None, :] < lengths[:, None]).to(logits.device)
        logp = token_logprobs(picked, targets.to(logits.device))
        logp = torch.where(mask, logp, torch.zeros_like(logp))
        entropy = None
        if with_entropy:
            with torch.no_grad():
                entropy = torch.where(mask, token_entropy(picked), torch.zeros_like(logp))
        return logp, mask, entropy

    def save(self, out_dir: str | Path) -> Path:
        """Write weights, config, generation config and tokenizer/processor (hub layout)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out)
        (self.processor if self.processor is not None else self.tokenizer).save_pretrained(out)
        return out


def _accepts(model: Any, argument: str) -> bool:
    return argument in inspect.signature(model.forward).parameters


DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto` is bfloat16 on a GPU and float32 on the CPU; other names are taken as given."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ModelLoadError(
            f"unknown dtype {dtype!r}", f"choose auto or one of {', '.join(DTYPES)}"
        ) from None


def _looks_local(path: str) -> bool:
    """A name the user meant as a folder (hub ids are `name` or `org/name`)."""
    return path.startswith((".", "/", "~")) or path.count("/") > 1 or path.endswith("/")


def load_policy(
    name_or_path: str | Path,
    device: str | None = None,
    *,
    trust_remote_code: bool = False,
    dtype: str = "auto",
    attn_implementation: str | None = None,
) -> Policy:
    """Load a checkpoint as a `Policy` (dtype `auto`: bf16 on a GPU, fp32 on the CPU).

    The model family is read from the config (`model_family`): vision-language checkpoints
    load with their `AutoProcessor`, text-only ones with `AutoTokenizer`. A folder that
    does not exist, or a checkpoint transformers cannot load, raises `ModelLoadError`
    saying which and what to try.
    """
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForImageTextToText,
        AutoProcessor,
        AutoTokenizer,
    )

    path = str(name_or_path)
    if _looks_local(path) and not Path(path).expanduser().exists():
        raise ModelLoadError(f"model folder {path} does not exist",
                             "check the path, or give a hub id such as org/name")
    target = torch.device(device or _default_device())
    torch_dtype = resolve_dtype(dtype, target)
    extra: dict[str, Any] = {}
    if attn_implementation:
        extra["attn_implementation"] = attn_implementation
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        family, takes_images = model_family(config)
        auto_model = (
            AutoModelForImageTextToText if family == "image-text-to-text" else AutoModelForCausalLM
        )
        model = auto_model.from_pretrained(
            path, dtype=torch_dtype, trust_remote_code=trust_remote_code, **extra
        )
        processor = None
        if takes_images:
            processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
            tokenizer = processor.tokenizer
        else:
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, ImportError) as exc:
        raise ModelLoadError(f"cannot load model {path}: {_first_line(exc)}",
                             _load_hint(exc, trust_remote_code)) from exc
    if tokenizer.pad_token is None:
        # Padding positions are masked out; any id works, EOS is what base models have.
        tokenizer.pad_token = tokenizer.eos_token
    model = model.to(target)  # type: ignore[arg-type]  # transformers' stub types `to` oddly
    return Policy(
        model=model,
        tokenizer=tokenizer,
        processor=processor,
        name_or_path=path,
        device=target,
        dtype=torch_dtype,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_hint(exc: BaseException, trust_remote_code: bool) -> str:
    text = str(exc)
    if "trust_remote_code" in text and not trust_remote_code:
        return "the checkpoint ships its own code: pass --trust-remote-code"
    if "offline" in text.lower() or "HF_HUB_OFFLINE" in text:
        return "the hub is not reachable here: download the model and give its folder"
    return "give a model folder with config.json and weights, or a hub id"
