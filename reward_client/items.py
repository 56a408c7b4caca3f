"""Turning a framework's sample into a `/score` item, and a result into a number.

Shared by the adapters (`reward_client.verl`, `.trl`, `.areal`, `.slime`, `.openrlhf`)
and by the server's framework endpoints (`POST /openrlhf`, `POST /slime`), so both read
labels and clean completions the same way.

- `strip_special_tokens`: chat templates end a completion with an end-of-turn token
  (`<|im_end|>`, `<|endoftext|>`, `</s>`, `<|eot_id|>`, ...). The reward's format check
  wants the completion to end with `</answer>`, so trailing special tokens are dropped
  before scoring (on by default in every adapter; `clean_completion=False` keeps them).
- `parse_label`: a framework carries the reference in one field (`label`, `ground_truth`,
  `answer`). It may be a JSON object with `answer` and `answer_type` (and the other item
  fields), a JSON string of such an object, or a plain answer whose answer type comes from
  elsewhere (a default, a URL parameter, a dataset column).
- `reward_value`: what a framework that needs a number gets for a result. Items the server
  could not judge (`timeout`, `error`, `invalid`) get `unscored_value` (default 0.0),
  counted in `UNSCORED` and logged, never silently.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from reward_client.client import UNSCORED_STATUSES

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8000"
SPECIAL_TOKENS = ("<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<|end_of_text|>",
                  "<|end|>", "<end_of_turn>", "<|eom_id|>")
# Fields of a `/score` item a label object or a dataset row may carry.
ITEM_FIELDS = ("answer_type", "problem_type", "prompt_type", "choices", "options", "id")


def default_url() -> str:
    """The reward server's URL: `REWARD_URL` in the environment, else the local default."""
    return os.environ.get("REWARD_URL", DEFAULT_URL).rstrip("/")


def strip_special_tokens(text: str, tokens: tuple[str, ...] = SPECIAL_TOKENS) -> str:
    """`text` without trailing special tokens (and the whitespace around them)."""
    end = len(text)
    while True:
        head = text[:end].rstrip()
        token = next((t for t in tokens if head.endswith(t)), None)
        if token is None:
            return text if end == len(text) else head
        end = len(head) - len(token)


class LabelError(ValueError):
    """A label that cannot be made into an item (no answer type anywhere)."""


def parse_label(label: Any, answer_type: str | None = None) -> dict[str, Any]:
    """The item fields a label gives: at least `answer` and `answer_type`.

    `label` is a mapping with `answer` (plus any of `ITEM_FIELDS`), a JSON text of one, or
    a plain answer (a string, a number, a list) scored as `answer_type`. A label's own
    `answer_type` wins over the `answer_type` argument.
    """
    value = label
    if isinstance(label, str) and label.lstrip().startswith("{"):
        try:
            value = json.loads(label)
        except json.JSONDecodeError:
            value = label
    if isinstance(value, Mapping) and "answer" in value:
        fields = {key: value[key] for key in ITEM_FIELDS if value.get(key) is not None}
        fields["answer"] = value["answer"]
        fields.setdefault("answer_type", answer_type)
    else:
        fields = {"answer": value, "answer_type": answer_type}
    if not fields.get("answer_type"):
        raise LabelError(
            "the label names no answer_type: give a label {\"answer\": ..., \"answer_type\": ...}"
            " or set the adapter's answer_type (for the /openrlhf and /slime endpoints: "
            "?answer_type=...)"
        )
    return fields


def make_item(response: str, fields: Mapping[str, Any], clean_completion: bool = True,
              **defaults: Any) -> dict[str, Any]:
    """A `/score` item: `fields` (from `parse_label` or a row) over `defaults`."""
    item = {key: value for key, value in defaults.items() if value is not None}
    item.update({key: value for key, value in fields.items() if value is not None})
    item["response"] = strip_special_tokens(response) if clean_completion else response
    if item.get("choices") is not None:
        item["choices"] = list(item["choices"])
    if item.get("id") is not None:
        item["id"] = str(item["id"])
    return item


class UnscoredCounter:
    """How many results a framework got `unscored_value` for, by status (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, status: str, message: str | None) -> None:
        with self._lock:
            self.counts[status] += 1
            total = sum(self.counts.values())
        # the first one of a kind, then every hundredth: visible, but not a flood
        if self.counts[status] == 1 or total % 100 == 0:
            log.warning("reward server could not score an item (%s: %s); %s so far: %s",
                        status, message, total, dict(self.counts))

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())


UNSCORED = UnscoredCounter()


def is_unscored(result: Mapping[str, Any]) -> bool:
    return result.get("status") in UNSCORED_STATUSES


def reward_value(result: Mapping[str, Any], unscored_value: float = 0.0) -> float:
    """The result's `reward`, or `unscored_value` (counted and logged) when not scored."""
    if is_unscored(result):
        UNSCORED.add(str(result.get("status")), result.get("error"))
        return unscored_value
    return float(result["reward"])
