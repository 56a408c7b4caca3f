"""`ocrtext`: ANLS, the Average Normalized Levenshtein Similarity of DocVQA/InfoVQA.

Contract
- `extract` takes the answer block, lower-cases it and collapses whitespace (the
  normalization of the DocVQA evaluation), so that answers differing only there share a
  cache entry.
- `compare` scores against every gold (a string or a list of strings) and keeps the best:

      NL(a, g)  = Levenshtein(a, g) / max(len(a), len(g))     (both normalized)
      anls(a, g) = 1 - NL(a, g)   if NL(a, g) < threshold   else 0

  with threshold 0.5, as in Biten et al., "Scene Text Visual Question Answering" (ICCV
  2019) and the DocVQA/InfoVQA evaluation. The edit distance is rapidfuzz's Levenshtein.

Why not the recipe's rule: it divides the distance of the normalized strings by the raw
(un-normalized) gold length, so extra spaces or case in the gold change the score
(RECIPE.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from reward_server.types import ItemContext, Reference, Verdict
from reward_server.verifiers.base import BaseOptions, extract_tagged, golds_of, option


@dataclass(frozen=True)
class Options(BaseOptions):
    threshold: float = option(
        0.5, "ANLS threshold: a normalized distance at or above it scores 0 (DocVQA: 0.5).", ge=0.0,
        le=1.0
    )


def normalize(text: str) -> str:
    """Lower-cased, whitespace collapsed: the DocVQA evaluation's normalization."""
    return " ".join(text.lower().split())


def similarity(answer: str, gold: str) -> float:
    """1 - normalized Levenshtein distance of two already normalized strings."""
    from rapidfuzz.distance import Levenshtein

    longest = max(len(answer), len(gold))
    if longest == 0:
        return 1.0
    return 1.0 - Levenshtein.distance(answer, gold) / longest


def extract(response: str, options: Options, context: ItemContext) -> str | None:
    answer = extract_tagged(response, options, context)
    return None if answer is None else normalize(answer) or None


def compare(
    extracted: str, reference: Reference, options: Options, context: ItemContext
) -> Verdict:
    golds = [str(g) for g in golds_of(reference)]
    if not golds:
        return Verdict(0.0, {"anls": 0.0}, status="error", message="empty reference list")
    best = max(similarity(normalize(extracted), normalize(gold)) for gold in golds)
    score = best if 1.0 - best < options.threshold else 0.0
    return Verdict(score, {"anls": score, "similarity": best})
