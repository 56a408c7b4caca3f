"""`boolean`: a yes/no answer, read from whole words.

Contract
- `extract` takes the answer block and returns `"yes"` or `"no"` when the answer takes
  one side, else its lower-cased, whitespace-collapsed text (`compare` then scores 0 and
  says why: a hedge or no yes/no word).
  "yes"/"true" and "no"/"false" count only as whole words ("know", "nothing" and
  "untrue" are not "no"); "not true"/"not false" are read as their negation; phrases of
  not knowing ("I don't know", "no idea", "not sure", "cannot be determined") are no
  answer, not "no". An answer that opens with one side ("Yes, there are no cats") takes
  that side unless a later clause opens with the other ("Yes. No."); otherwise naming both
  sides ("yes or no", "Yes/No") is a hedge.
- `compare` maps the gold (a bool, or one of the same words) and checks equality.

Why not the recipe's rule: it tests substrings, yes/true first, so "I don't know"
counts as "no" (RECIPE.md) and any answer mentioning "yes" counts as yes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from reward_server.types import ItemContext, Reference, Verdict
from reward_server.verifiers.base import BaseOptions, extract_tagged, golds_of


@dataclass(frozen=True)
class Options(BaseOptions):
    pass


Side = Literal["yes", "no"]

_SIDE: dict[str, Side] = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}
_UNKNOWN_RE = re.compile(
    r"\b(?:(?:do|does|did)\s*(?:n[o']?t|not)\s+know|no\s+idea|not\s+sure|unsure|unknown|"
    r"uncertain|unclear|can\s*(?:no|')?t\s+(?:be\s+)?(?:tell|determined?|say|know)|"
    r"cannot\s+(?:be\s+)?(?:tell|determined?|say|know)|impossible\s+to\s+(?:tell|say|know)|"
    r"not\s+(?:possible|enough\s+information)|insufficient)\b",
    re.IGNORECASE,
)
_NEGATED_RE = re.compile(r"\b(?:not|isn[’']?t)\s+(true|false)\b", re.IGNORECASE)
_WORD_RE = re.compile(r"(?<![\w'’-])(yes|no|true|false)(?![\w'’-])", re.IGNORECASE)
# A side word that opens the answer and ends its clause: "Yes,", "No.", "True".
_OPENING_RE = re.compile(r"^\W*(yes|no|true|false)\s*(?:[.,;:!)\]]|$)", re.IGNORECASE)
# The gap after a clause mark holds no other clause mark: with `\W*` a run of dots would
# rescan itself from every dot (quadratic on "Yes......", in the server process).
_CLAUSE_OPENING_RE = re.compile(r"[.;!?][^\w.;!?]*(yes|no|true|false)\b", re.IGNORECASE)
_MARKUP_RE = re.compile(r"\*\*|__|[*`$\"“”]")
_WS_RE = re.compile(r"\s+")


def side_of(text: str) -> Side | Literal["hedge", "unknown", "none"]:
    """Which side a short answer takes."""
    text = _MARKUP_RE.sub("", text)
    letter = text.strip().rstrip(".!").lower()
    if letter in ("y", "n"):
        return "yes" if letter == "y" else "no"
    if _UNKNOWN_RE.search(text):
        return "unknown"
    text = _NEGATED_RE.sub(lambda m: "false" if m.group(1).lower() == "true" else "true", text)
    opening = _OPENING_RE.match(text)
    if opening:
        side = _SIDE[opening.group(1).lower()]
        later = {_SIDE[m.group(1).lower()] for m in _CLAUSE_OPENING_RE.finditer(text)}
        return side if later <= {side} else "hedge"
    sides = {_SIDE[m.group(1).lower()] for m in _WORD_RE.finditer(text)}
    if len(sides) == 1:
        return sides.pop()
    return "hedge" if sides else "none"


def extract(response: str, options: Options, context: ItemContext) -> str | None:
    answer = extract_tagged(response, options, context)
    if answer is None:
        return None
    side = side_of(answer)
    if side in ("yes", "no"):
        return side
    return _WS_RE.sub(" ", answer).strip().lower() or None


_WHY = {
    "hedge": "the answer names both yes and no",
    "unknown": "the answer says it does not know",
    "none": "the answer has no yes/no/true/false word",
}


def _gold_sides(reference: Reference) -> set[Side]:
    golds = golds_of(reference)
    sides: set[Side] = set()
    for gold in golds:
        if isinstance(gold, bool):
            sides.add("yes" if gold else "no")
        elif isinstance(gold, str) and gold.strip().strip(".!").lower() in _SIDE:
            sides.add(_SIDE[gold.strip().strip(".!").lower()])
    return sides


def compare(
    extracted: str, reference: Reference, options: Options, context: ItemContext
) -> Verdict:
    golds = _gold_sides(reference)
    if not golds:
        return Verdict(
            0.0,
            {"accuracy": 0.0},
            status="error",
            message=f"reference {reference!r} is not yes/no/true/false",
        )
    side = extracted if extracted in ("yes", "no") else side_of(extracted)
    if side not in ("yes", "no"):
        return Verdict(0.0, {"accuracy": 0.0}, message=_WHY[side])
    score = 1.0 if side in golds else 0.0
    return Verdict(score, {"accuracy": score})
