"""`any` and `critic`: exact string match after trimming.

Contract
- `extract` takes the answer block, trims it and collapses runs of whitespace to one
  space (line breaks and double spaces carry no meaning in a short answer). Case is kept,
  so the reported answer is what the model wrote.
- `compare` checks equality with any gold (a string, or a list of acceptable strings;
  numbers are compared by their text), case-insensitively unless `case_sensitive`.
  The registry serves `any` with `case_sensitive=False` and `critic` with `True`, as the
  recipe does.
"""

from __future__ import annotations

from dataclasses import dataclass

from reward_server.types import ItemContext, Reference, Verdict
from reward_server.verifiers.base import BaseOptions, extract_tagged, golds_of, option


@dataclass(frozen=True)
class Options(BaseOptions):
    case_sensitive: bool = option(
        True, "Compare letter case too (`critic`); False folds case first (`any`)."
    )


def _collapse(text: str) -> str:
    return " ".join(text.split())


def extract(response: str, options: Options, context: ItemContext) -> str | None:
    answer = extract_tagged(response, options, context)
    return None if answer is None else _collapse(answer) or None


def compare(
    extracted: str, reference: Reference, options: Options, context: ItemContext
) -> Verdict:
    golds = [_collapse(str(g)) for g in golds_of(reference)]
    if not golds:
        return Verdict(0.0, {"accuracy": 0.0}, status="error", message="empty reference list")
    answer = _collapse(extracted)
    if not options.case_sensitive:
        answer = answer.casefold()
        golds = [gold.casefold() for gold in golds]
    score = 1.0 if answer in golds else 0.0
    return Verdict(score, {"accuracy": score})
