"""TRL: `GRPOTrainer(reward_funcs=reward_client.trl.reward_func(url))`.

`reward_func(url=None, **defaults)` returns an async reward function of TRL's shape:
`f(prompts, completions, completion_ids, **columns) -> list[float | None]` for the whole
generation batch, sent as one `/score` request. Per completion it reads the data set's
columns `answer` (or `solution`), `answer_type`, `problem_type`, `prompt_type`,
`choices`, `options`; `defaults` fill columns a data set lacks (e.g.
`answer_type="math-expressions"`). Conversational completions (lists of messages) are
scored on their last assistant message. Items the server could not judge are `None`
(TRL leaves them out of the reward), counted in `reward_client.items.UNSCORED`.

Where the installed TRL hands reward functions its `log_metric` / `log_extra` hooks, the
accuracy and format rewards and the unscored count are logged through them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reward_client.client import RewardClient
from reward_client.items import UNSCORED, default_url, is_unscored, make_item, parse_label

COLUMNS = ("answer_type", "problem_type", "prompt_type", "choices", "options")


def completion_text(completion: Any) -> str:
    """A completion as text: a string, or the last assistant message of a conversation."""
    if isinstance(completion, str):
        return completion
    messages = [m for m in completion if m.get("role", "assistant") == "assistant"] or completion
    content = messages[-1].get("content", "") if messages else ""
    if isinstance(content, list):  # multimodal parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _column(columns: dict[str, Any], name: str, index: int, default: Any) -> Any:
    values = columns.get(name)
    if isinstance(values, Sequence) and not isinstance(values, str) and len(values) > index:
        value = values[index]
        return default if value is None else value
    return default


def reward_func(url: str | None = None, *, clean_completion: bool = True,
                client: RewardClient | None = None,
                **defaults: Any) -> Callable[..., Any]:
    """An async TRL reward function scoring every completion of a batch on the server."""
    client = client or RewardClient(url or default_url())

    async def reward_server(prompts: list[Any], completions: list[Any],
                            completion_ids: list[Any] | None = None,
                            **columns: Any) -> list[float | None]:
        items = []
        for index, completion in enumerate(completions):
            answer = _column(columns, "answer", index, None)
            if answer is None:
                answer = _column(columns, "solution", index, defaults.get("answer"))
            row = {name: _column(columns, name, index, defaults.get(name)) for name in COLUMNS}
            fields = parse_label(answer, row.pop("answer_type"))
            items.append(make_item(completion_text(completion), fields, clean_completion, **row))
        results = await client.ascore(items, desc="reward server")
        rewards: list[float | None] = []
        for result in results:
            if is_unscored(result):
                UNSCORED.add(str(result.get("status")), result.get("error"))
                rewards.append(None)
            else:
                rewards.append(float(result["reward"]))
        _log(columns, results)
        return rewards

    return reward_server


def _log(columns: dict[str, Any], results: list[dict[str, Any]]) -> None:
    log_metric, log_extra = columns.get("log_metric"), columns.get("log_extra")
    scored = [r for r in results if not is_unscored(r)]
    if callable(log_metric):
        log_metric("reward_server/unscored", float(len(results) - len(scored)))
        if scored:
            for key in ("acc_reward", "format_reward"):
                log_metric(f"reward_server/{key}", sum(r[key] for r in scored) / len(scored))
    if callable(log_extra):
        log_extra("reward_server_status", [r.get("status") for r in results])
        log_extra("acc_reward", [r.get("acc_reward") for r in results])
