"""`number` (counting): the last number stated in the answer equals the gold, as a number.

Contract
- `extract` takes the answer block and returns the count it states in a canonical
  decimal form (`"1000"`, `"3"`, `"-4"`, `"2.5"`), or the whitespace-collapsed answer
  text when it states no number (then `compare` scores 0 and says so).
  Understood: digits with thousands separators (`1,000`), decimals (`3.0`, `12.`, `.5`),
  signs (`-4`, `−4`), and English number words ("twelve", "twenty-one",
  "one hundred and five", "a dozen", "half a dozen", "a pair of", "a couple of",
  "a single", "a lone", "a trio of"), in sentences ("There are 3 apples."). An answer
  with no number but "no"/"none"/"nothing" ("There are no dogs.") counts as 0; "one"
  after a determiner ("the one on the left") is a pronoun, not a count.
- Which number is the count (`stated_count`): a number marked as the total ("a total of
  9", "12 in all", "altogether there are 12"), else a first number that its breakdown
  adds up to ("Five cars: two red and three blue." is 5, "7 people (4 adults and 3
  children)") or that opens a breakdown ("10 people: 4 men, 5 women", but not "Step 1:"),
  else the LAST number that is not a part ("5 cars, 2 of them red" is 5).
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
from reward_server.verifiers.base import BaseOptions, extract_tagged, golds_of, option


@dataclass(frozen=True)
class Options(BaseOptions):
    rel_tol: float = option(0.0, "Relative tolerance (math.isclose); 0 means exact.", ge=0.0)
    abs_tol: float = option(0.0, "Absolute tolerance (math.isclose); 0 means exact.", ge=0.0)


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
# Fixed phrases that state a count: "a pair of shoes", "half a dozen eggs", "a single cat".
_PHRASES = {
    "half a dozen": 6, "a pair of": 2, "a couple of": 2, "a single": 1, "a lone": 1,
    "a trio of": 3,
}
_PHRASE_RUN = r"\b(?:" + "|".join(p.replace(" ", r"\s+") for p in _PHRASES) + r")\b"
# A run of number words: "twenty-one", "one hundred and five", "a dozen".
_WORD_RUN = (
    rf"(?:\ba\s+(?=dozen\b|hundred\b|thousand\b))?\b(?:{_WORDS})\b"
    rf"(?:(?:\s+and\s+|[\s-]+)\b(?:{_WORDS})\b)*"
)
# Digits: an optional sign (not the hyphen of "3-4" or "COVID-19"), thousands groups,
# an optional fraction; or a bare fraction ".5".
_DIGITS = r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?![\d])|(?<![\w.])[-+−]?\.\d+"
_NUMBER_RE = re.compile(
    rf"(?P<digits>{_DIGITS})|(?P<phrase>{_PHRASE_RUN})|(?P<words>{_WORD_RUN})", re.IGNORECASE
)
# A number marked as the total: "a total of 9", "in total 7", "altogether there are 12"
# before it; "7 in total", "6 birds in all" after it.
_TOTAL_BEFORE_RE = re.compile(
    r"(?:\btotal(?:\s+of)?|\bin\s+total|\baltogether|\boverall|\bin\s+all)\s*[:,]?\s*"
    r"(?:(?:there|which)\s+(?:are|is|were|was)\s+|(?:is|are|makes?|gives?)\s+)?$",
    re.IGNORECASE,
)
_TOTAL_AFTER_RE = re.compile(
    r"\s*(?:[a-z]+\s+){0,2}?(?:in\s+total|total|altogether|in\s+all|overall)\b", re.IGNORECASE
)
# A number that counts part of another: "3 of which are red", "2 of them".
_PART_AFTER_RE = re.compile(r"\s+of\s+(?:them|which|these|those)\b", re.IGNORECASE)
# A count opening its breakdown: "10 people: ...", "7 cars (...)", "8:"; unless the number
# labels a step or a part ("Step 1: ...") or belongs to a name ("COVID-19").
_BREAKDOWN_AFTER_RE = re.compile(r"(?:\s+[A-Za-z]+){0,3}\s*[:(]")
_LABEL_BEFORE_RE = re.compile(
    r"\b(?:step|part|question|item|no\.?|number|figure|image|option|row|line|case)\s*#?\s*$"
    r"|#\s*$|\w-$",  # "COVID-19 cases: 12": a name, not a count
    re.IGNORECASE,
)
_CONTEXT_CHARS = 40  # how far before/after a number those markers are looked for
_SCAN_CHARS = 4000  # only the end of a long answer is read for the count
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


def numbers(text: str) -> list[tuple[int, int, Decimal]]:
    """Every number stated in `text` (digits, words, phrases): (start, end, value)."""
    masked = _PRONOUN_ONE_RE.sub(lambda m: " " * len(m.group(0)), text)
    found = []
    for match in _NUMBER_RE.finditer(masked):
        value: Decimal | None
        if match.group("digits"):
            value = _to_decimal(match.group("digits"))
        elif match.group("phrase"):
            value = Decimal(_PHRASES[" ".join(match.group("phrase").lower().split())])
        else:
            words = _words_value(match.group("words"))
            value = None if words is None else Decimal(words)
            if value is None:
                # Several numbers in one run ("one two three"): the last word wins.
                value = Decimal(_words_value(re.split(r"[\s-]+", match.group("words"))[-1]) or 0)
        if value is not None:
            found.append((match.start(), match.end(), value))
    return found


def last_number(text: str) -> Decimal | None:
    """The last number stated in `text` (digits or words), or None."""
    found = numbers(text)
    return found[-1][2] if found else None


def _tail(text: str) -> str:
    """The last `_SCAN_CHARS` of a long answer, from a word boundary (a count is stated
    last; a bounded scan stays cheap; a number longer than that is kept whole)."""
    if len(text) <= _SCAN_CHARS:
        return text
    start = len(text) - _SCAN_CHARS
    cut = max(text.rfind(" ", 0, start), text.rfind("\n", 0, start))
    return text[cut + 1 :] if cut >= 0 else text


def stated_count(text: str) -> Decimal | None:
    """The count an answer states (see the module docstring), or None."""
    text = _tail(text)
    found = numbers(text)
    if not found:
        return None
    totals = []
    claimed = -1  # end of the last "in total" that follows a number: it is that number's
    for start, end, value in found:
        window_start = max(0, start - _CONTEXT_CHARS)
        marker = _TOTAL_BEFORE_RE.search(text, window_start, start)
        after = _TOTAL_AFTER_RE.match(text, end, end + _CONTEXT_CHARS)
        if (marker and marker.start() >= claimed) or after:
            totals.append(value)
        if after:
            claimed = after.end()
    if totals:
        return totals[-1]
    wholes = [value for _, end, value in found
              if not _PART_AFTER_RE.match(text[end : end + _CONTEXT_CHARS])]
    if not wholes:
        return found[-1][2]
    first, parts = wholes[0], wholes[1:]
    if len(parts) >= 2 and sum(parts) == first:
        return first  # "Five cars: two red and three blue."
    head_start, head_end, _ = next(f for f in found if f[2] == first)
    if parts and _BREAKDOWN_AFTER_RE.match(text, head_end) and not _LABEL_BEFORE_RE.search(
        text, max(0, head_start - _CONTEXT_CHARS), head_start
    ):
        return first  # "10 people: 4 men, 5 women": a breakdown, perhaps partial
    return wholes[-1]


def extract(response: str, options: Options, context: ItemContext) -> str | None:
    answer = extract_tagged(response, options, context)
    if answer is None:
        return None
    value = stated_count(answer)
    if value is None:
        if _NONE_RE.search(answer):
            return "0"  # "none", "There are no dogs."
        return _WS_RE.sub(" ", answer).strip() or None
    return canonical(value)


def _gold_values(reference: Reference) -> list[Decimal]:
    golds = golds_of(reference)
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
