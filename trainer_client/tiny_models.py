"""Tiny randomly initialised models, built offline, for tests and the CPU demo.

No weights ship with the project and nothing is downloaded: the tokenizer is trained here
with `tokenizers` on a few hundred generated strings (digits, the recipe's tags and chat
markers among them), and the models are fresh `transformers` configs with a few thousand
to a few hundred thousand parameters, saved with `save_pretrained` so that the trainer
loads them exactly like a hub checkpoint:

- `build_tiny_text_model`: a 2-layer Qwen2 causal LM -> `AutoModelForCausalLM` +
  `AutoTokenizer`.
- `build_tiny_vlm`: a LLaVA-style vision-language model (a 1-layer SigLIP vision tower, a
  projector and the same 2-layer Qwen2 language model) -> `AutoModelForImageTextToText` +
  `AutoProcessor`. Qwen2-VL's processor is not used because transformers builds it with a
  video processor that needs torchvision, and PyPI's torchvision cannot be imported beside
  the CPU build of torch this project runs its tests with; LLaVA's processor needs only
  Pillow. The trainer code paths are the same (chat template with image parts, processor
  expanding the image placeholder, `pixel_values` into the forward pass).

The tokenizer is byte-level BPE (any text encodes, nothing is unknown) with every digit a
token of its own, so "copy the digit" style tasks are learnable in a few steps. The tags
`<think>`, `</think>`, `<answer>`, `</answer>` are single tokens that survive decoding
with `skip_special_tokens=True`; the chat markers are special tokens.

Command line: ``python -m trainer_client.tiny_models OUT_DIR [--vision] [--seed N]``.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch

# Chat template in the ChatML layout Qwen models use. Content is a string or a list of
# {"type": "image"} / {"type": "text", "text": ...} parts; an image part renders as the
# processor's placeholder, which the processor then expands to one token per image patch.
_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

PAD_TOKEN = "<|endoftext|>"
EOS_TOKEN = "<|im_end|>"
IMAGE_TOKEN = "<image>"
_SPECIAL_TOKENS = [PAD_TOKEN, "<|im_start|>", EOS_TOKEN, IMAGE_TOKEN]
_TAG_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]

VOCAB_SIZE = 512
# Language model: small enough that a GRPO step on CPU takes well under a second. Head
# size 32 (64 / 2 heads), the smallest vLLM's attention kernels accept, so the same tiny
# model also exercises the vLLM engine on a GPU.
_TEXT_DIMS = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 1024,
}
# Vision tower: 28x28 images in 14x14 patches -> 4 image tokens per image.
_IMAGE_SIZE = 28
_PATCH_SIZE = 14

# fmt: off
_WORDS = (
    "the", "a", "an", "of", "in", "on", "to", "is", "are", "what", "which", "how", "many",
    "find", "compute", "answer", "question", "image", "picture", "shows", "number", "digit",
    "copy", "count", "add", "plus", "minus", "times", "value", "final", "only", "put", "your",
    "within", "think", "solve", "step", "by", "following", "please", "thinking", "analysis",
    "procedure", "helpful", "ai", "assistant", "you", "are", "box", "object", "left", "right",
    "above", "below", "red", "green", "blue", "circle", "square", "coordinates", "first", "write",
    "each", "relevant", "yes", "no", "true", "false",
)
# fmt: on


def _corpus(seed: int) -> list[str]:
    """A few hundred strings covering what the tests and the demo ask and answer."""
    rng = random.Random(seed)
    lines: list[str] = []
    for n in range(200):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 12)))
        lines.append(f"{words} {a} {b}?")
        lines.append(f"<answer>{n % 10}</answer>")
        lines.append(f"<think>{a} plus {b} is {a + b}.</think><answer>{a + b}</answer>")
        lines.append(
            f"Copy the digit: {n % 10}. Put ONLY your final answer within <answer></answer>."
        )
    lines.append("You are a helpful AI assistant.")
    return lines


def build_tokenizer(seed: int = 0):  # -> transformers.PreTrainedTokenizerFast
    """Train the byte-level BPE tokenizer and wrap it for `transformers` (chat template set)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    # Qwen2's own normalizer and pre-tokenizer (its regex isolates every digit): transformers
    # loads a saved qwen2 checkpoint's tokenizer as `Qwen2Tokenizer`, which rebuilds exactly
    # this pipeline around the trained vocabulary, so saved and loaded tokenizers agree.
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(_TAG_TOKENS),
        special_tokens=_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(seed), trainer)
    # Added (not special) tokens: one id each, but kept by decode(skip_special_tokens=True).
    tokenizer.add_tokens(_TAG_TOKENS)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        model_max_length=_TEXT_DIMS["max_position_embeddings"],
        padding_side="left",
    )
    wrapped.chat_template = _CHAT_TEMPLATE
    return wrapped


def _text_config_kwargs(tokenizer) -> dict:
    return {
        **_TEXT_DIMS,
        # Padded to a multiple of 64 like real checkpoints; ids past len(tokenizer) unused.
        "vocab_size": -(-len(tokenizer) // 64) * 64,
        "tie_word_embeddings": True,
        "bos_token_id": None,
        "eos_token_id": tokenizer.convert_tokens_to_ids(EOS_TOKEN),
        "pad_token_id": tokenizer.convert_tokens_to_ids(PAD_TOKEN),
    }


def _save_generation_config(model, tokenizer, out: Path) -> None:
    from transformers import GenerationConfig

    config = GenerationConfig(
        eos_token_id=tokenizer.convert_tokens_to_ids(EOS_TOKEN),
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD_TOKEN),
        do_sample=True,
        temperature=1.0,
    )
    model.generation_config = config
    config.save_pretrained(out)


def build_tiny_text_model(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a randomly initialised 2-layer Qwen2 LM and its tokenizer to `out_dir`."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(seed)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(Qwen2Config(**_text_config_kwargs(tokenizer)))
    _save_generation_config(model, tokenizer, out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_vlm(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a randomly initialised LLaVA-style VLM (SigLIP + Qwen2) and its processor."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(seed)
    text_config = {"model_type": "qwen2", **_text_config_kwargs(tokenizer)}
    vision_config = {
        "model_type": "siglip_vision_model",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 1,
        "image_size": _IMAGE_SIZE,
        "patch_size": _PATCH_SIZE,
    }
    config = LlavaConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=(_IMAGE_SIZE // _PATCH_SIZE) ** 2,
        # SigLIP has no CLS token: every patch feature of the last layer is an image token.
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    _save_generation_config(model, tokenizer, out)
    model.save_pretrained(out)
    processor = LlavaProcessor(
        image_processor=SiglipImageProcessorPil(size={"height": _IMAGE_SIZE, "width": _IMAGE_SIZE}),
        tokenizer=tokenizer,
        patch_size=_PATCH_SIZE,
        vision_feature_select_strategy="full",
        chat_template=_CHAT_TEMPLATE,
        image_token=IMAGE_TOKEN,
    )
    processor.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m trainer_client.tiny_models",
        description="Build a tiny random model (tokenizer trained offline) for tests and demos.",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write the model into")
    parser.add_argument(
        "--vision", action="store_true", help="build the tiny vision-language model"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and corpus")
    args = parser.parse_args(argv)
    build = build_tiny_vlm if args.vision else build_tiny_text_model
    print(build(args.out_dir, seed=args.seed))


if __name__ == "__main__":
    main()
