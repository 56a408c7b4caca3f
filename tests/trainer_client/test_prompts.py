"""The recipe's prompts and the chat messages built from a row."""

from __future__ import annotations

import pytest

from trainer_client.prompts import (
    ANSWER_ONLY_INSTRUCTION,
    CHAIN_OF_THOUGHT_INSTRUCTION,
    SPATIAL_INSTRUCTION,
    SYSTEM_MESSAGE,
    build_messages,
    instruction_for,
)


def test_instructions_are_the_recipe_verbatim() -> None:
    assert ANSWER_ONLY_INSTRUCTION == "Put ONLY your final answer within <answer></answer>."
    assert CHAIN_OF_THOUGHT_INSTRUCTION == (
        "Think and solve the following question step by step. Please put your thinking and "
        "analysis procedure within <think></think>. Put ONLY your final answer within "
        "<answer></answer>."
    )
    assert SYSTEM_MESSAGE == "You are a helpful AI assistant."


@pytest.mark.parametrize(
    "prompt_type,problem_type,expected",
    [
        ("normal", "counting", ANSWER_ONLY_INSTRUCTION),  # stage 1
        (None, "stem", ANSWER_ONLY_INSTRUCTION),  # a missing prompt_type is answer-only
        ("long", "stem", CHAIN_OF_THOUGHT_INSTRUCTION),  # anything but normal is CoT
        ("long", "spatial-reasoning", f"{CHAIN_OF_THOUGHT_INSTRUCTION} {SPATIAL_INSTRUCTION}"),
        ("normal", "spatial-reasoning", ANSWER_ONLY_INSTRUCTION),  # answer-only asks no boxes
    ],
)
def test_instruction_for(prompt_type: str | None, problem_type: str, expected: str) -> None:
    assert instruction_for(prompt_type, problem_type) == expected


def test_text_only_messages_drop_image_markers_and_prepend_instruction() -> None:
    messages = build_messages("<image>\nHow many cats?", prompt_type="normal", num_images=1)
    assert messages[0] == {"role": "system", "content": SYSTEM_MESSAGE}
    assert messages[1] == {
        "role": "user",
        "content": f"{ANSWER_ONLY_INSTRUCTION}\nHow many cats?",
    }


def test_vision_messages_put_images_where_the_markers_are() -> None:
    messages = build_messages(
        "Compare <image> with <image> please.", prompt_type="long", num_images=2, vision=True
    )
    parts = messages[1]["content"]
    assert [p["type"] for p in parts] == ["text", "image", "text", "image", "text"]
    assert parts[0]["text"] == f"{CHAIN_OF_THOUGHT_INSTRUCTION}\nCompare"
    assert parts[2]["text"] == "with"
    assert parts[4]["text"] == "please."


def test_vision_images_without_markers_come_first() -> None:
    parts = build_messages("What is shown?", prompt_type="normal", num_images=1, vision=True)[1][
        "content"
    ]
    assert parts == [
        {"type": "image"},
        {"type": "text", "text": f"{ANSWER_ONLY_INSTRUCTION}\nWhat is shown?"},
    ]


def test_more_markers_than_images_keeps_text_readable() -> None:
    parts = build_messages("a <image> b", prompt_type="normal", num_images=0, vision=True)[1][
        "content"
    ]
    assert parts == [{"type": "text", "text": f"{ANSWER_ONLY_INSTRUCTION}\na b"}]
