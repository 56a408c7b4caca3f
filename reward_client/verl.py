"""verl: `custom_reward_function.path` / `.name` pointing here.

    custom_reward_function.path=$(python -c "import reward_client.verl as m; print(m.__file__)")
    custom_reward_function.name=compute_score            # or compute_score_async
    +custom_reward_function.reward_kwargs.url=http://HOST:8000

verl calls `compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs)`
once per sample (its reward loop runs many at once: the calls are coalesced into batched
`/score` requests, see `reward_client.batching`). The item comes from:
- `ground_truth`: the answer, or a label object / JSON text with `answer` and
  `answer_type` (see `reward_client.items.parse_label`);
- `extra_info`: `answer_type`, `problem_type`, `prompt_type`, `choices`, `options` (the
  recipe's row fields, as verl's data preprocessing keeps them);
- `answer_types`: a reward kwarg mapping `data_source` to an answer type, for data sets
  whose rows carry none.

The return value is a dict with the same keys for every sample, as verl requires: `score`
(the reward), `acc_reward`, `format_reward`, `scored` (0.0 when the server could not judge
the item: the score is then `unscored_value`), and one `component_<name>` for each name of
`components` (0.0 when the verifier did not report it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reward_client import batching
from reward_client.items import default_url, is_unscored, make_item, parse_label, reward_value

DEFAULT_COMPONENTS = ("accuracy", "anls", "iou", "spatial_bonus", "tests_passed")


def _item(data_source: str, solution_str: str, ground_truth: Any,
          extra_info: Mapping[str, Any] | None, answer_types: Mapping[str, str] | None,
          answer_type: str | None, clean_completion: bool) -> dict[str, Any]:
    extra = dict(extra_info or {})
    default_type = extra.get("answer_type") or (answer_types or {}).get(data_source) or answer_type
    fields = parse_label(ground_truth, default_type)
    row = {key: extra.get(key) for key in ("problem_type", "prompt_type", "choices", "options")}
    return make_item(solution_str, fields, clean_completion, **row)


def _scores(result: Mapping[str, Any], unscored_value: float,
            components: tuple[str, ...]) -> dict[str, float]:
    scored = not is_unscored(result)
    values = result.get("components") or {}
    return {
        "score": reward_value(result, unscored_value),
        "acc_reward": float(result.get("acc_reward") or 0.0) if scored else unscored_value,
        "format_reward": float(result.get("format_reward") or 0.0),
        "scored": 1.0 if scored else 0.0,
        **{f"component_{name}": float(values.get(name, 0.0)) for name in components},
    }


def compute_score(data_source: str, solution_str: str, ground_truth: Any,
                  extra_info: Mapping[str, Any] | None = None, *, url: str | None = None,
                  answer_types: Mapping[str, str] | None = None, answer_type: str | None = None,
                  unscored_value: float = 0.0,
                  components: tuple[str, ...] | list[str] = DEFAULT_COMPONENTS,
                  clean_completion: bool = True, **_: Any) -> dict[str, float]:
    """verl's reward function (sync); see the module docstring."""
    item = _item(data_source, solution_str, ground_truth, extra_info, answer_types,
                 answer_type, clean_completion)
    result = batching.shared(url or default_url()).score_one(item)
    return _scores(result, unscored_value, tuple(components))


async def compute_score_async(data_source: str, solution_str: str, ground_truth: Any,
                              extra_info: Mapping[str, Any] | None = None, *,
                              url: str | None = None,
                              answer_types: Mapping[str, str] | None = None,
                              answer_type: str | None = None, unscored_value: float = 0.0,
                              components: tuple[str, ...] | list[str] = DEFAULT_COMPONENTS,
                              clean_completion: bool = True, **_: Any) -> dict[str, float]:
    """verl's reward function (`async def`, for its async reward loop)."""
    item = _item(data_source, solution_str, ground_truth, extra_info, answer_types,
                 answer_type, clean_completion)
    result = await batching.shared(url or default_url()).score_one_async(item)
    return _scores(result, unscored_value, tuple(components))
