"""The tiny offline models load through the Auto classes exactly like hub checkpoints."""

from __future__ import annotations

import os

# Set before transformers/huggingface_hub are imported: nothing may reach a hub.
os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
)

from trainer_client.tiny_models import (
    build_tiny_text_model,
    build_tiny_vlm,
    build_tokenizer,
    main,
)

MESSAGES = [
    {"role": "system", "content": "You are a helpful AI assistant."},
    {"role": "user", "content": "Copy the digit: 7"},
]


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_text_model(tmp_path_factory.mktemp("tiny-text"))


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"))


def test_text_model_loads_with_auto_classes(text_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(text_dir)
    tokenizer = AutoTokenizer.from_pretrained(text_dir)
    assert model.config.model_type == "qwen2"
    assert model.config.num_hidden_layers == 2
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    ids = tokenizer("<answer>7</answer>", return_tensors="pt")["input_ids"]
    logits = model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], model.config.vocab_size)
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id


def test_saved_tokenizer_encodes_like_the_trained_one(text_dir: Path) -> None:
    loaded = AutoTokenizer.from_pretrained(text_dir)
    trained = build_tokenizer()
    text = "What is 123 plus 45? <think>so</think> <answer>168</answer> ünïcode ok"
    assert loaded(text)["input_ids"] == trained(text)["input_ids"]


@pytest.mark.parametrize(
    "piece",
    ["<answer>", "</answer>", "<think>", "</think>", "<|im_start|>", "<|im_end|>", "0", "7"],
)
def test_tags_and_digits_are_single_tokens(text_dir: Path, piece: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(text_dir)
    assert len(tokenizer(piece, add_special_tokens=False)["input_ids"]) == 1


def test_numbers_split_into_digits(text_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(text_dir)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("2026")["input_ids"])
    assert tokens == ["2", "0", "2", "6"]


def test_tags_survive_decoding_without_special_tokens(text_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(text_dir)
    ids = tokenizer("<think>a</think><answer>7</answer><|im_end|>")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<think>a</think><answer>7</answer>"


def test_chat_template_is_chatml_with_generation_prompt(text_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(text_dir)
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n"
        "<|im_start|>user\nCopy the digit: 7<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_same_seed_same_weights_other_seed_differs(tmp_path: Path, text_dir: Path) -> None:
    again = AutoModelForCausalLM.from_pretrained(build_tiny_text_model(tmp_path / "a", seed=0))
    other = AutoModelForCausalLM.from_pretrained(build_tiny_text_model(tmp_path / "b", seed=1))
    first = AutoModelForCausalLM.from_pretrained(text_dir)
    name = "model.layers.0.self_attn.q_proj.weight"
    weights = {n: dict(m.named_parameters())[name] for n, m in (("0", first), ("a", again))}
    torch.testing.assert_close(weights["0"], weights["a"])
    assert not torch.equal(weights["0"], dict(other.named_parameters())[name])


def test_vlm_loads_and_backpropagates_through_the_image(vlm_dir: Path) -> None:
    model = AutoModelForImageTextToText.from_pretrained(vlm_dir)
    processor = AutoProcessor.from_pretrained(vlm_dir)
    messages = [
        MESSAGES[0],
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which digit?"}]},
    ]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    image = Image.new("RGB", (40, 30), (200, 30, 30))
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    image_token = model.config.image_token_index
    # The placeholder is expanded to one token per 14x14 patch of the 28x28 image.
    assert int((inputs["input_ids"] == image_token).sum()) == 4
    assert inputs["pixel_values"].shape == (1, 3, 28, 28)

    out = model(**inputs, labels=inputs["input_ids"])
    assert torch.isfinite(out.loss)
    out.loss.backward()
    patch = dict(model.named_parameters())["model.vision_tower.embeddings.patch_embedding.weight"]
    assert patch.grad is not None and patch.grad.abs().sum() > 0

    # The image changes the text logits: the vision features really reach the LM.
    other = processor(
        text=[text], images=[Image.new("RGB", (40, 30), (0, 0, 255))], return_tensors="pt"
    )
    with torch.no_grad():
        a = model(**inputs).logits[0, -1]
        b = model(**other).logits[0, -1]
    assert not torch.allclose(a, b)


def test_cli_builds_text_and_vision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([str(tmp_path / "t")])
    main([str(tmp_path / "v"), "--vision", "--seed", "3"])
    printed = capsys.readouterr().out
    assert str(tmp_path / "t") in printed and str(tmp_path / "v") in printed
    assert (tmp_path / "t" / "config.json").exists()
    assert (tmp_path / "v" / "processor_config.json").exists()
