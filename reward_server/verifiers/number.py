"""`number` (counting): the last number stated in the answer equals the gold, as a number.

Contract
- `extract` takes the answer block and returns the LAST number in it in a canonical
  decimal form (`"1000"`, `"3"`, `"-4"`, `"2.5"`), or the whitespace-collapsed answer
  text when it states no number (then `compare` scores 0 and says so).
  Understood: digits with thousands separators (`1,000`), decimals (`3.0`, `12.`, `.5`),
  signs (`-4`, `−4`), and English number words ("twelve", "twenty-one",
  "one hundred and five", "a dozen"), in sentences ("There are 3 apples."). An answer
  with no number but "no"/"none"/"nothing" ("There are no dogs.") counts as 0; "one"
  after a determiner ("the one on the left") is a pronoun, not a count.
- `compare` parses the gold (int, float, numeric or worded string, or a list of
  acceptable ones) and checks equality, exactly by default (`3 == 3.0`), or within
  `rel_tol` / `abs_tol` as in `math.isclose`.

Why not the recipe's rule: it takes the last run of `[0-9.]` and compares strings, so
`1,000`, `3.0`, `12.`, `twelve` and negative numbers all fail (RECIPE.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from reward_server.types import ItemContext, Reference, Verdict
from reward_server.verifiers.base import BaseOptions, extract_tagged, option


@dataclass(frozen=True)
class Options(BaseOptions):
    rel_tol: float = option(0.0, "Relative tolerance (math.isclose); 0 means exact.", ge=0.0)  # type: ignore[assignment]
    abs_tol: float = option(0.0, "Absolute tolerance (math.isclose); 0 means exact.", ge=0.0)  # type: ignore[assignment]


_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_WORDS = "|".join(sorted([*_UNITS, *_SCALES, "dozen"], key=len, reverse=True))
# A run of number words: "twenty-one", "one hundred and five", "a dozen".
_WORD_RUN = (
    rf"(?:\ba\s+(?=dozen\b|hundred\b|thousand\b))?\b(?:{_WORDS})\b"
    rf"(?:(?:\s+and\s+|[\s-]+)\b(?:{_WORDS})\b)*"
)
# Digits: an optional sign (not the hyphen of "3-4" or "COVID-19"), thousands groups,
# an optional fraction; or a bare fraction ".5".
_DIGITS = r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?![\d])|(?<![\w.])[-+−]?\.\d+"
_NUMBER_RE = re.compile(rf"(?P<digits>{_DIGITS})|(?P<words>{_WORD_RUN})", re.IGNORECASE)
# "the one on the left": "one" as a pronoun, not a count.
_PRONOUN_ONE_RE = re.compile(
    r"\b(?:the|this|that|each|which|any|every|no|some|another)\s+one\b", re.IGNORECASE
)
# With no number stated, these words say the count is zero.
_NONE_RE = re.compile(r"\b(?:no|none|nothing|nobody|neither)\b", re.IGNORECASE)
_WS_RE = re.compile(r"\s+")


# No count is worded beyond this: a longer run is several numbers (and, read as one,
# would grow an integer of thousands of digits, quadratic work in the server process).
_WORDS_MAX = 10**15


def _words_value(run: str) -> int | None:
    """The value of a run of English number words, or None when it is not one number."""
    tokens = [t for t in re.split(r"[\s-]+", run.lower()) if t and t != "and"]
    total, current, seen = 0, 0, False
    for token in tokens:
        if current > _WORDS_MAX or total > _WORDS_MAX:
            return None
        if token == "a":
            current = 1
        elif token in _UNITS:
            value = _UNITS[token]
            # "twenty one" adds; "one two" is two numbers, not one.
            if seen and current % 100 and (current % 10 or value >= 10 or current % 100 < 20):
                return None
            current += value
            seen = True
        elif token == "dozen":
            current = (current or 1) * 12
            seen = True
        elif token == "hundred":
            current = (current or 1) * 100
            seen = True
        else:  # thousand, million
            total += (current or 1) * _SCALES[token]
            current = 0
            seen = True
    return total + current if seen else None


def _to_decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.replace(",", "").replace("−", "-").rstrip("."))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def canonical(value: Decimal) -> str:
    """`3.0` -> "3", `-0` -> "0", `2.50` -> "2.5"; no exponent notation, no rounding."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "+0") else text


def last_number(text: str) -> Decimal | None:
    """The last number stated in `text` (digits or words), or None."""
    masked = _PRONOUN_ONE_RE.sub(lambda m: " " * len(m.group(0)), text)
    found: Decimal | None = None
    for match in _NUMBER_RE.finditer(masked):
        if match.group("digits"):
            value = _to_decimal(match.group("digits"))
        else:
            words = _words_value(match.group("words"))
            value = None if words is None else Decimal(words)
            if value is None:
                # Several numbers in one run ("one two three"): the last word wins.
                value = Decimal(_words_value(re.split(r"[\s-]+", match.group("words"))[-1]) or 0)
        if value is not None:
            found = value
    return found


def extract(response: str, options: Options, context: ItemContext) -> str | None:
    answer = extract_tagged(response, options, context)
    if answer is None:
        return None
    value = last_number(answer)
    if value is None:
        if _NONE_RE.search(answer):
            return "0"  # "none", "There are no dogs."
        return _WS_RE.sub(" ", answer).strip() or None
    return canonical(value)


def _gold_values(reference: Reference) -> list[Decimal]:
    golds = reference if isinstance(reference, list) else [reference]
    values = []
    for gold in golds:
        if isinstance(gold, bool):
            continue
        if isinstance(gold, int | float):
            value = _to_decimal(repr(gold)) if math.isfinite(gold) else None
        else:
            value = last_number(str(gold))
        if value is not None:
            values.append(value)
    return values


def _equal(answer: Decimal, gold: Decimal, options: Options) -> bool:
    if options.rel_tol == 0 and options.abs_tol == 0:
        return answer == gold
    return math.isclose(
        float(answer), float(gold), rel_tol=options.rel_tol, abs_tol=options.abs_tol
    )


def compare(
    extracted: str, reference: Reference, options: Options, context: ItemContext
) -> Verdict:
    golds = _gold_values(reference)
    if not golds:
        return Verdict(
            0.0,
            {"accuracy": 0.0},
            status="error",
            message=f"reference {reference!r} holds no number",
        )
    answer = _to_decimal(extracted)
    if answer is None:
        return Verdict(0.0, {"accuracy": 0.0}, message="the answer states no number")
    score = 1.0 if any(_equal(answer, gold, options) for gold in golds) else 0.0
    return Verdict(score, {"accuracy": score})
