"""The exact call shapes of each framework's reward code, written after its source.

- OpenRLHF `openrlhf/utils/remote_rm_utils.py` (`remote_rm_fn`): POSTs
  `{"query": queries, "prompts": prompts, "labels": labels}` and reads the `rewards` key;
  its experience maker also reads `scores` and `extra_logs`.
- slime `slime/rollout/rm_hub/__init__.py` (`remote_rm`): POSTs
  `{"prompt": sample.prompt, "response": sample.response, "label": sample.label}` and
  keeps the JSON reply (`--reward-key` picks one key); custom functions are awaited as
  `fn(args, sample)` or, with `--group-rm`, `fn(args, samples)`.
- verl `verl/utils/reward_score` / reward loop: `compute_score(data_source, solution_str,
  ground_truth, extra_info, **reward_kwargs)`, sync or async, one call per sample.
- TRL `GRPOTrainer._calculate_rewards`: `reward_func(prompts=..., completions=...,
  completion_ids=..., **columns)` for the whole batch, columns being lists.
- AReaL: `reward_fn(prompt, completions, prompt_ids, completion_ids, **row)` per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def openrlhf_payload(queries: list[str], prompts: list[str], labels: list[Any]) -> dict[str, Any]:
    return {"query": queries, "prompts": prompts, "labels": labels}


def slime_payload(prompt: Any, response: str, label: Any) -> dict[str, Any]:
    return {"prompt": prompt, "response": response, "label": label}


@dataclass
class SlimeSample:
    """The fields of slime's `Sample` that reward functions read."""

    prompt: Any
    response: str
    label: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    reward: Any = None


@dataclass
class SlimeArgs:
    rm_url: str | None = None
    reward_key: str | None = None
