"""The recipe's prompts, and the chat messages a data row becomes.

Instructions are the recipe's, verbatim (RECIPE.md, "Prompts"), prepended to the problem:

- answer-only (stage 1, `prompt_type == "normal"`): `ANSWER_ONLY_INSTRUCTION`;
- chain of thought (every other `prompt_type`): `CHAIN_OF_THOUGHT_INSTRUCTION`;
- `spatial-reasoning` problems in chain-of-thought mode also get `SPATIAL_INSTRUCTION`,
  which asks for object coordinates in the thinking (the server's spatial bonus rewards a
  box inside `<think>`). Answer-only prompts do not get it: they ask for the answer alone.

The system message is `SYSTEM_MESSAGE`. Problems carry `<image>` markers where images go;
for a vision-language model each marker becomes an image slot in the user turn (images
without a marker go first), for a text-only model the markers are dropped.
"""

from __future__ import annotations

import re
from typing import Any

SYSTEM_MESSAGE = "You are a helpful AI assistant."

ANSWER_ONLY_INSTRUCTION = "Put ONLY your final answer within <answer></answer>."

CHAIN_OF_THOUGHT_INSTRUCTION = (
    "Think and solve the following question step by step. Please put your thinking and "
    "analysis procedure within <think></think>. Put ONLY your final answer within "
    "<answer></answer>."
)

SPATIAL_INSTRUCTION = (
    "While thinking, first write the coordinates (x, y, x, y) of each object relevant to "
    "the question."
)

ANSWER_ONLY_PROMPT_TYPE = "normal"

IMAGE_MARKER = "<image>"
_IMAGE_MARKER_RE = re.compile(r"\s*<image>\s*")


def is_answer_only(prompt_type: str | None) -> bool:
    """The recipe's rule: `normal` rows are answer-only, anything else is chain of thought."""
    return (prompt_type or ANSWER_ONLY_PROMPT_TYPE) == ANSWER_ONLY_PROMPT_TYPE


def instruction_for(prompt_type: str | None, problem_type: str | None) -> str:
    if is_answer_only(prompt_type):
        return ANSWER_ONLY_INSTRUCTION
    if problem_type == "spatial-reasoning":
        return f"{CHAIN_OF_THOUGHT_INSTRUCTION} {SPATIAL_INSTRUCTION}"
    return CHAIN_OF_THOUGHT_INSTRUCTION


def build_messages(
    problem: str,
    *,
    prompt_type: str | None,
    problem_type: str | None = None,
    num_images: int = 0,
    vision: bool = False,
) -> list[dict[str, Any]]:
    """Chat messages (system + user) in the Hugging Face chat-template format.

    With `vision`, the user content is a list of `{"type": "image"}` and `{"type": "text"}`
    parts in the order of the problem's `<image>` markers; the caller passes the images
    themselves to the processor in the same order. Without it, the content is one string.
    """
    instruction = instruction_for(prompt_type, problem_type)
    if not vision:
        text = _IMAGE_MARKER_RE.sub(" ", problem).strip()
        return [
            {"role": "system", "content": SYSTEM_MESSAGE},
            {"role": "user", "content": f"{instruction}\n{text}"},
        ]
    pieces = problem.split(IMAGE_MARKER)
    markers = len(pieces) - 1
    parts: list[dict[str, Any]] = [{"type": "image"} for _ in range(max(num_images - markers, 0))]
    parts.append({"type": "text", "text": f"{instruction}\n"})
    used = 0
    for i, piece in enumerate(pieces):
        if i > 0 and used < num_images:
            parts.append({"type": "image"})
            used += 1
        if piece.strip():
            parts.append({"type": "text", "text": piece.strip()})
    return [
        {"role": "system", "content": SYSTEM_MESSAGE},
        {"role": "user", "content": _merge_text(parts)},
    ]


def _merge_text(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join neighbouring text parts so the template sees one text block per gap."""
    merged: list[dict[str, Any]] = []
    for part in parts:
        if part["type"] == "text" and merged and merged[-1]["type"] == "text":
            previous = merged[-1]["text"]
            joiner = "" if previous.endswith("\n") else " "
            merged[-1] = {"type": "text", "text": previous + joiner + part["text"]}
        else:
            merged.append(dict(part))
    return merged
