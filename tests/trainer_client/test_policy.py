"""Policy loading, prompt building and completion log-probs on the tiny offline models."""

from __future__ import annotations

import os

# Set before transformers/huggingface_hub are imported: nothing may reach a hub.
os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from trainer_client.errors import ModelLoadError
from trainer_client.grpo import token_entropy, token_logprobs
from trainer_client.policy import Policy, PromptInputs, Sample, load_policy, model_family
from trainer_client.tiny_models import build_tiny_text_model, build_tiny_vlm

SYSTEM = {"role": "system", "content": "You are a helpful AI assistant."}


@pytest.fixture(scope="module")
def text_policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    return load_policy(build_tiny_text_model(tmp_path_factory.mktemp("text")), device="cpu")


@pytest.fixture(scope="module")
def vlm_policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    return load_policy(build_tiny_vlm(tmp_path_factory.mktemp("vlm")), device="cpu")


def image_message(text: str, image_first: bool = True) -> list[dict]:
    parts = [{"type": "image"}, {"type": "text", "text": text}]
    return [SYSTEM, {"role": "user", "content": parts if image_first else parts[::-1]}]


def reference_logprobs(policy: Policy, prompt: PromptInputs, completion: torch.Tensor):
    """One sequence, no padding, full logits: the definition sequence_logprobs must match."""
    ids = torch.cat([prompt.input_ids, completion])[None]
    with torch.no_grad():
        logits = policy.model(input_ids=ids, **prompt.vision).logits[0]
    shifted = logits[len(prompt) - 1 : -1]
    return token_logprobs(shifted, completion), token_entropy(shifted)


def test_load_text_policy(text_policy: Policy) -> None:
    assert not text_policy.is_vision
    assert text_policy.processor is None
    assert text_policy.device == torch.device("cpu")
    assert text_policy.dtype == torch.float32
    assert next(text_policy.model.parameters()).dtype == torch.float32
    assert text_policy.tokenizer.convert_tokens_to_ids("<|im_end|>") in text_policy.eos_token_ids


def test_model_loading_knobs(tmp_path: Path) -> None:
    folder = build_tiny_text_model(tmp_path / "m")
    policy = load_policy(folder, "cpu", dtype="bfloat16", attn_implementation="eager")
    assert policy.dtype == torch.bfloat16
    assert next(policy.model.parameters()).dtype == torch.bfloat16
    assert policy.model.config._attn_implementation == "eager"


@pytest.mark.parametrize(
    "name,message,hint",
    [
        ("./runs/stage1/bset", "model folder ./runs/stage1/bset does not exist", "check the path"),
        # HF_HUB_OFFLINE is set for these tests: a hub id that is not cached cannot load
        ("some-org/not-a-cached-model", "cannot load model some-org/not-a-cached-model",
         "hub is not reachable"),
    ],
)
def test_unloadable_models_say_what_to_do(name: str, message: str, hint: str) -> None:
    with pytest.raises(ModelLoadError, match=message) as error:
        load_policy(name, "cpu")
    assert hint in error.value.hint


def test_load_vision_policy(vlm_policy: Policy) -> None:
    assert vlm_policy.is_vision
    assert vlm_policy.processor is not None
    assert vlm_policy.tokenizer is vlm_policy.processor.tokenizer


@pytest.mark.parametrize(
    "fields,expected",
    [
        ({"model_type": "qwen2"}, ("causal-lm", False)),  # text LM
        ({"model_type": "qwen2_5_vl"}, ("image-text-to-text", True)),  # native VLM
        ({"model_type": "llava"}, ("image-text-to-text", True)),  # the tiny VLM's family
        # Remote-code VLM mapping only AutoModelForCausalLM: still needs its processor.
        (
            {
                "model_type": "custom_vlm",
                "auto_map": {"AutoModelForCausalLM": "m.M"},
                "vision_config": {},
            },
            ("causal-lm", True),
        ),
        (
            {"model_type": "custom_vlm", "auto_map": {"AutoModelForImageTextToText": "m.M"}},
            ("image-text-to-text", True),
        ),
    ],
)
def test_model_family(fields: dict, expected: tuple[str, bool]) -> None:
    assert model_family(SimpleNamespace(**fields)) == expected


def test_build_prompt_applies_chat_template(text_policy: Policy) -> None:
    prompt = text_policy.build_prompt([SYSTEM, {"role": "user", "content": "Copy 7"}])
    assert prompt.text.endswith("<|im_start|>user\nCopy 7<|im_end|>\n<|im_start|>assistant\n")
    assert prompt.input_ids.dim() == 1
    expected = text_policy.tokenizer(prompt.text, add_special_tokens=False)["input_ids"]
    assert prompt.input_ids.tolist() == expected
    assert prompt.vision == {} and prompt.images == []


def test_build_prompt_with_image(vlm_policy: Policy) -> None:
    image = Image.new("RGB", (50, 20), (10, 200, 10))
    prompt = vlm_policy.build_prompt(image_message("Which digit?"), [image])
    image_id = vlm_policy.model.config.image_token_index
    assert int((prompt.input_ids == image_id).sum()) == 4  # 28x28 image, 14x14 patches
    assert prompt.vision["pixel_values"].shape == (1, 3, 28, 28)
    assert prompt.images == [image]
    assert "<image>" in prompt.text  # unexpanded placeholder, for engines with a processor


def test_build_prompt_rejects_images_for_text_model(text_policy: Policy) -> None:
    with pytest.raises(ValueError, match="text-only"):
        text_policy.build_prompt(image_message("x"), [Image.new("RGB", (8, 8))])


def test_build_prompt_rejects_image_count_mismatch(vlm_policy: Policy) -> None:
    with pytest.raises(ValueError, match="1 image part"):
        vlm_policy.build_prompt(image_message("x"), [])


def test_text_logprobs_match_unpadded_reference(text_policy: Policy) -> None:
    short = text_policy.build_prompt([{"role": "user", "content": "Copy 7"}])
    long = text_policy.build_prompt([SYSTEM, {"role": "user", "content": "Copy the digit 3 now"}])
    completions = [torch.tensor([300, 26, 511, 2]), torch.tensor([17, 2])]
    batch = [Sample(long, completions[0]), Sample(short, completions[1])]
    logp, mask, entropy = text_policy.sequence_logprobs(batch, with_entropy=True)
    assert logp.shape == mask.shape == (2, 4)
    assert mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert logp.requires_grad
    assert entropy is not None and not entropy.requires_grad
    for row, (prompt, completion) in enumerate(batch):
        ref_logp, ref_entropy = reference_logprobs(text_policy, prompt, completion)
        n = len(completion)
        torch.testing.assert_close(logp[row, :n].detach(), ref_logp, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(entropy[row, :n], ref_entropy, atol=1e-5, rtol=1e-5)
    assert logp[1, 2:].tolist() == [0.0, 0.0]  # padding carries nothing


def test_vision_logprobs_match_reference_and_reach_the_vision_tower(vlm_policy: Policy) -> None:
    red = vlm_policy.build_prompt(
        image_message("Which digit?"), [Image.new("RGB", (30, 30), "red")]
    )
    blue = vlm_policy.build_prompt(
        image_message("Which digit is drawn in this picture here?", image_first=False),
        [Image.new("RGB", (30, 30), "blue")],
    )
    batch = [Sample(red, torch.tensor([20, 511, 2])), Sample(blue, torch.tensor([21, 2]))]
    vlm_policy.model.zero_grad()
    logp, mask, _ = vlm_policy.sequence_logprobs(batch)
    for row, (prompt, completion) in enumerate(batch):
        ref_logp, _ = reference_logprobs(vlm_policy, prompt, completion)
        torch.testing.assert_close(
            logp[row, : len(completion)].detach(), ref_logp, atol=1e-5, rtol=1e-5
        )
    (-(logp * mask).sum()).backward()
    patch = dict(vlm_policy.model.named_parameters())[
        "model.vision_tower.embeddings.patch_embedding.weight"
    ]
    assert patch.grad is not None and patch.grad.abs().sum() > 0


def test_accepts_rollout_like_objects(text_policy: Policy) -> None:
    class Rolled:
        def __init__(self, prompt: PromptInputs, completion_ids: torch.Tensor) -> None:
            self.prompt, self.completion_ids = prompt, completion_ids

    prompt = text_policy.build_prompt([{"role": "user", "content": "Copy 7"}])
    completion = torch.tensor([26, 2])
    a, _, _ = text_policy.sequence_logprobs([Rolled(prompt, completion)])
    b, _, _ = text_policy.sequence_logprobs([(prompt, completion)])
    torch.testing.assert_close(a, b)


def test_temperature_divides_logits(text_policy: Policy) -> None:
    prompt = text_policy.build_prompt([{"role": "user", "content": "Copy 7"}])
    completion = torch.tensor([26, 2])
    hot, _, _ = text_policy.sequence_logprobs([Sample(prompt, completion)], temperature=2.0)
    ids = torch.cat([prompt.input_ids, completion])[None]
    with torch.no_grad():
        logits = text_policy.model(input_ids=ids).logits[0, len(prompt) - 1 : -1]
    torch.testing.assert_close(hot[0].detach(), token_logprobs(logits / 2.0, completion))


def test_gradient_steps_raise_the_completion_logprob(tmp_path: Path) -> None:
    policy = load_policy(build_tiny_text_model(tmp_path / "m", seed=5), device="cpu")
    prompt = policy.build_prompt([{"role": "user", "content": "Copy 4"}])
    batch = [Sample(prompt, torch.tensor([510, 24, 511, 2]))]
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=1e-2)
    before = policy.sequence_logprobs(batch)[0].sum().item()
    for _ in range(3):
        logp, mask, _ = policy.sequence_logprobs(batch)
        loss = -(logp * mask).sum() / mask.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert policy.sequence_logprobs(batch)[0].sum().item() > before + 1.0


def test_save_and_reload_round_trip(tmp_path: Path, vlm_policy: Policy) -> None:
    out = vlm_policy.save(tmp_path / "ckpt")
    again = load_policy(out, device="cpu")
    assert again.is_vision
    prompt = vlm_policy.build_prompt(image_message("digit?"), [Image.new("RGB", (28, 28), "red")])
    prompt_again = again.build_prompt(image_message("digit?"), [Image.new("RGB", (28, 28), "red")])
    assert prompt.input_ids.tolist() == prompt_again.input_ids.tolist()
    completion = torch.tensor([22, 2])
    with torch.no_grad():
        a = vlm_policy.sequence_logprobs([Sample(prompt, completion)])[0]
        b = again.sequence_logprobs([Sample(prompt_again, completion)])[0]
    torch.testing.assert_close(a, b)


def test_model_inputs_pads_token_aligned_extras(text_policy: Policy) -> None:
    # Qwen2-VL style processors return a per-token `mm_token_type_ids` row: it must be
    # padded like input_ids (not concatenated like pixel_values).
    a = PromptInputs(
        torch.tensor([5, 6, 7]),
        vision={"mm_token_type_ids": torch.tensor([[0, 1, 1]]), "pixel_values": torch.ones(2, 4)},
    )
    b = PromptInputs(
        torch.tensor([8]),
        vision={"mm_token_type_ids": torch.tensor([[1]]), "pixel_values": torch.zeros(1, 4)},
    )
    pad = text_policy.pad_token_id
    left = text_policy.model_inputs([a, b], padding_side="left")
    assert left["input_ids"].tolist() == [[5, 6, 7], [pad, pad, 8]]
    assert left["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert left["mm_token_type_ids"].tolist() == [[0, 1, 1], [0, 0, 1]]
    assert left["pixel_values"].shape == (3, 4)
    right = text_policy.model_inputs([a, b], [torch.tensor([9]), torch.tensor([9, 9])])
    assert right["input_ids"].tolist() == [[5, 6, 7, 9], [8, 9, 9, pad]]
    assert right["mm_token_type_ids"].tolist() == [[0, 1, 1, 0], [1, 0, 0, 0]]
