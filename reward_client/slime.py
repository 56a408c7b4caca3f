"""slime: `--custom-rm-path reward_client.slime.custom_rm` (or `.custom_group_rm` with
`--group-rm`).

slime awaits `custom_rm(args, sample)` per sample (`sample.prompt`, `sample.response`,
`sample.label`, `sample.metadata`), or `custom_group_rm(args, samples)` per group. The
label is an answer or a label object with `answer_type` (`reward_client.items.parse_label`);
`sample.metadata` may carry `answer_type`, `problem_type`, `prompt_type`, `choices`. The
URL is `args.rm_url` when set, else `REWARD_URL`. Without a custom function, slime's own
remote client works too: `--rm-type remote_rm --rm-url http://HOST:8000/slime
--reward-key reward` (the server's `POST /slime`).
"""

from __future__ import annotations

from typing import Any

from reward_client import batching
from reward_client.items import default_url, make_item, parse_label, reward_value

UNSCORED_VALUE = 0.0


def _url(args: Any) -> str:
    url = getattr(args, "rm_url", None)
    if url and url.rstrip("/").endswith("/slime"):
        url = url.rstrip("/")[: -len("/slime")]  # the server endpoint's URL, reused
    return (url or default_url()).rstrip("/")


def _item(sample: Any) -> dict[str, Any]:
    metadata = getattr(sample, "metadata", None) or {}
    fields = parse_label(sample.label, metadata.get("answer_type"))
    extra = {key: metadata.get(key) for key in ("problem_type", "prompt_type", "choices",
                                                 "options")}
    return make_item(sample.response, fields, **extra)


async def custom_rm(args: Any, sample: Any) -> float:
    """The reward of one sample."""
    result = await batching.shared(_url(args)).score_one_async(_item(sample))
    return reward_value(result, UNSCORED_VALUE)


async def custom_group_rm(args: Any, samples: list[Any]) -> list[float]:
    """The rewards of a group of samples (`--group-rm`), in order."""
    results = await batching.shared(_url(args)).score_many_async([_item(s) for s in samples])
    return [reward_value(result, UNSCORED_VALUE) for result in results]
