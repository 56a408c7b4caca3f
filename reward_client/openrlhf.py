"""OpenRLHF: its own remote client against `POST /openrlhf`, or this file as its
`reward_func`.

With a URL (`--reward.remote_url http://HOST:8000/openrlhf`, older `--remote_rm_url`),
OpenRLHF POSTs `{"query": [...], "prompts": [...], "labels": [...]}` and the server's
`/openrlhf` endpoint answers `rewards`, `scores` and `extra_logs`: nothing of ours runs
in OpenRLHF. With a path to this file (`--reward.remote_url $(python -c "import
reward_client.openrlhf as m; print(m.__file__)")`), OpenRLHF imports it and calls
`reward_func(queries, prompts, labels)`; the items go to `REWARD_URL` (default
http://127.0.0.1:8000). Each label is an answer or a label object with `answer_type`
(`reward_client.items.parse_label`); `REWARD_ANSWER_TYPE` names the answer type of plain
labels.
"""

from __future__ import annotations

import os
from typing import Any

from reward_client import batching
from reward_client.items import default_url, is_unscored, make_item, parse_label, reward_value

UNSCORED_VALUE = 0.0


def response_of(query: str, prompt: str) -> str:
    """The response part of OpenRLHF's `query` (prompt + response)."""
    if query.startswith(prompt):
        return query[len(prompt):]
    at = query.rfind(prompt) if prompt else -1
    return query[at + len(prompt):] if at >= 0 else query


def _tensor(values: list[float]) -> Any:
    try:
        import torch  # OpenRLHF concatenates tensors; the client itself needs no torch
    except ImportError:
        return values
    return torch.tensor(values, dtype=torch.float32)


def reward_func(queries: list[str], prompts: list[str], labels: list[Any],
                **_: Any) -> dict[str, Any]:
    """OpenRLHF's reward function: rewards, scores (accuracy in [0, 1]) and extra logs."""
    answer_type = os.environ.get("REWARD_ANSWER_TYPE")
    items = [make_item(response_of(q, p), parse_label(label, answer_type))
             for q, p, label in zip(queries, prompts, labels, strict=True)]
    results = batching.shared(default_url()).score_many(items)
    rewards = [reward_value(r, UNSCORED_VALUE) for r in results]
    scores = [UNSCORED_VALUE if is_unscored(r) else float(r["acc_reward"]) for r in results]
    return {
        "rewards": _tensor(rewards),
        "scores": _tensor(scores),
        "extra_logs": {
            "format_reward": _tensor([float(r.get("format_reward") or 0.0) for r in results]),
            "scored": _tensor([0.0 if is_unscored(r) else 1.0 for r in results]),
        },
    }
