"""The `/score` items a training step sends: ids per group member, options merged."""

from __future__ import annotations

import torch

from trainer_client.data import Row
from trainer_client.policy import PromptInputs
from trainer_client.rollout import Rollout
from trainer_client.train import score_items


def test_items_carry_row_fields_group_ids_and_merged_options() -> None:
    rows = [
        Row(id="a", problem="p", answer="3", answer_type="number", prompt_type="normal"),
        Row(id="b", problem="p", answer=["x", "y"], answer_type="ocrtext", prompt_type="long",
            problem_type="ocr", options={"strict_tags": True}),
    ]
    prompt = PromptInputs(input_ids=torch.tensor([1, 2]))
    rollouts = [Rollout(i // 2, prompt, torch.tensor([5]), f"text{i}", "stop") for i in range(4)]
    items = score_items(rows, rollouts, group_size=2, reward_options={"strict_tags": False})
    assert [i["id"] for i in items] == ["a#0", "a#1", "b#0", "b#1"]
    assert [i["response"] for i in items] == ["text0", "text1", "text2", "text3"]
    assert items[0]["options"] == {"strict_tags": False}  # the run-wide option
    assert items[2]["options"] == {"strict_tags": True}  # the row's own option wins
    assert items[2]["answer"] == ["x", "y"] and items[2]["prompt_type"] == "long"
    assert items[2]["problem_type"] == "ocr" and items[0]["answer_type"] == "number"
