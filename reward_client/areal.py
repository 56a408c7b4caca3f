"""AReaL: a picklable, synchronous reward function.

    from reward_client.areal import reward_fn          # -> float
    from reward_client.areal import reward_fn_dict     # -> {"reward", "acc_reward", ...}

AReaL calls `reward_fn(prompt, completions, prompt_ids, completion_ids, **row)` once per
sample, `row` being the data set's columns (`answer`, `answer_type`, `problem_type`,
`prompt_type`, `choices`, ...), often from a process pool: these are plain module-level
functions (picklable), and each process coalesces its concurrent calls into batched
`/score` requests. The server's URL is `REWARD_URL` (default http://127.0.0.1:8000).
`reward_fn_dict` returns the dict the LLaVA-OneVision-1.5-RL fork of AReaL reads
(`reward` and `acc_reward`, plus `format_reward` and `scored`).
"""

from __future__ import annotations

from typing import Any

from reward_client import batching
from reward_client.items import default_url, is_unscored, make_item, parse_label, reward_value

UNSCORED_VALUE = 0.0


def _result(completions: Any, row: dict[str, Any]) -> dict[str, Any]:
    answer = row.get("answer", row.get("label", row.get("ground_truth")))
    if isinstance(answer, list) and len(answer) == 1 and row.get("answer_type") != "bbox":
        answer = answer[0]  # the recipe stores `answer` as a list of strings
    fields = parse_label(answer, row.get("answer_type"))
    extra = {key: row.get(key) for key in ("problem_type", "prompt_type", "choices", "options")}
    completion = completions if isinstance(completions, str) else str(completions)
    return batching.shared(default_url()).score_one(make_item(completion, fields, **extra))


def reward_fn(prompt: Any, completions: Any, prompt_ids: Any = None, completion_ids: Any = None,
              **row: Any) -> float:
    """The reward of one completion as a float (unscored items: `UNSCORED_VALUE`)."""
    return reward_value(_result(completions, row), UNSCORED_VALUE)


def reward_fn_dict(prompt: Any, completions: Any, prompt_ids: Any = None,
                   completion_ids: Any = None, **row: Any) -> dict[str, float]:
    """The reward of one completion as the LLaVA-OneVision-1.5-RL fork's dict."""
    result = _result(completions, row)
    scored = not is_unscored(result)
    return {
        "reward": reward_value(result, UNSCORED_VALUE),
        "acc_reward": float(result.get("acc_reward") or 0.0) if scored else UNSCORED_VALUE,
        "format_reward": float(result.get("format_reward") or 0.0),
        "scored": 1.0 if scored else 0.0,
    }
