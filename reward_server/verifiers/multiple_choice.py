"""`multiple-choice`: one option letter must match the gold letter.

Contract
- `extract` takes the answer block (see `base.extract_tagged`), removes the usual wrapping
  (`\\boxed{}`, `**bold**`, `$...$`, "Answer:", "The answer is", "Option") and returns the
  option letter, upper-cased (`"B"`), when the answer names exactly one option. An answer
  that names none or several (a hedge such as "A or B", a list "A, C") comes back as its
  whitespace-collapsed text, so that `compare` can score it 0 and say why.
- `compare` maps the gold to a letter (a letter in any dress, `(B)`, `B.`, or, when
  `context.choices` are given, the option text) and checks equality. A letter outside the
  given choices scores 0.

Why not the recipe's rule: it compares the first character after stripping `.()`, so
`Answer: C` passes for gold A and `**B**` or `The answer is B` fail (RECIPE.md).

Reading an answer written as a sentence (after the explicit forms above fail):
- JSON answers (`{"answer": "c"}`, also fenced) are read by their `answer`/`choice`/...
  value.
- Every mention of an option is collected: its letter in running text, and with `choices`
  its text as whole words ("I can see a horse.", "No, nobody is wearing a hat.", the
  longest option text where one contains another, a plural: "two horses"), or its number
  without the unit, in digits or words (`30` for `30 cm`, "I count 4 birds." or "four
  birds" for the option `4`), as lmms-eval's MMMU parser and VLMEvalKit's
  `can_infer_text` read option content.
- A negated mention does not count: "It can't be B", "not a cat", "rule out A and B",
  "B is wrong".
- After a self-correction or a conclusion ("but", "actually", "wait", "on second thought",
  "so", ...) only the mentions after the last such word count: "I first thought A, but
  looking again, it is D." names D, as MMMU's parser keeps the last mention.
- The answer is the one option left; two or more left is a hedge (score 0).

The ambiguous word forms: a lone upper-case `A` or `I` inside a sentence is usually the
article or the pronoun ("A cat", "I think"), so in running text they count as letters only
when followed by punctuation, a conjunction or a verb of judgement ("A is correct"). Lower
case letters count only in explicit forms: the whole answer (`b`), `(b)`, `b)`, `b.` at
the start, or after "option"/"choice".

All patterns are linear; the negation checks look at a bounded window around a mention.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from reward_server.extraction import answer_phrase, last_boxed
from reward_server.types import ItemContext, Reference, Verdict
from reward_server.verifiers import number
from reward_server.verifiers.base import BaseOptions, extract_tagged, golds_of, option


@dataclass(frozen=True)
class Options(BaseOptions):
    max_options: int = option(
        26,
        "Highest option count considered when `choices` are not given (letters A..).",
        ge=1,
        le=26,
    )


# Wrapping that carries no meaning for the choice.
_MARKUP_RE = re.compile(r"\*\*|__|[*`$]|\\\(|\\\)|\\\[|\\\]")
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{([^{}]*)\}")
# "The correct answer is", "Final answer:", "Option", "Choice:" at the start.
_PREFIX_RE = re.compile(
    r"^(?:(?:so|thus|therefore|hence)\s*,?\s*)?(?:the\s+)?(?:final\s+|correct\s+|best\s+|right\s+)?"
    r"(?:answer|option|choice)s?(?:\s+(?:is|would\s+be|should\s+be))?\s*[:=]?\s*",
    re.IGNORECASE,
)
# The whole answer is one letter: B, (B), [B], B., B), B:
_LONE_LETTER_RE = re.compile(r"^[(\[]?\s*([A-Za-z])\s*[)\]]?\s*[.:)]?$")
# A letter that opens the answer and is followed by its option text: "b) cat", "B. cat",
# "(B) cat", "B: cat", "B, because ...". Lower case needs a closing bracket or a period.
_LEADING_LETTER_RE = re.compile(
    r"^(?:[(\[]\s*([A-Za-z])\s*[)\]]|([A-Z])\s*[.:,)\]]|([a-z])\s*[.)\]])(?=\s|$)\s*(.*)$",
    re.DOTALL,
)
# Only letters and separators: "A, C", "A and B", "A/B", "(A) (C)".
_LETTER_LIST_RE = re.compile(
    r"^[(\[]?[A-Za-z][)\].]?(?:(?:\s*[,;/&+]\s*|\s+(?:(?:and|or)\s+)?)[(\[]?[A-Za-z][)\].]?)+$",
    re.IGNORECASE,
)
# Two letters joined by or/and: a hedge wherever it appears ("either A or B").
_HEDGE_RE = re.compile(
    r"(?<![A-Za-z'])[(\[]?([A-Za-z])[)\]]?\s*(?:,|/|&|\bor\b|\band\b|\bnor\b)\s*"
    r"[(\[]?([A-Za-z])[)\]]?(?![A-Za-z'])",
    re.IGNORECASE,
)
# Letter mentions inside running text.
_PAREN_LETTER_RE = re.compile(r"[(\[]\s*([A-Za-z])\s*[)\]]")
_NAMED_LETTER_RE = re.compile(r"\b(?:option|choice)\s*[(\[]?([A-Za-z])\b", re.IGNORECASE)
# ASCII neighbours only, so that "答案是B" still names B.
_UPPER_LETTER_RE = re.compile(r"(?<![A-Za-z0-9_'’-])([A-Z])(?![A-Za-z0-9_'’-])(\s+[a-z]+)?")
# After A or I these words show the letter is an option, not an article or a pronoun.
_AFTER_LETTER = frozenset(
    {
        "is",
        "was",
        "seems",
        "appears",
        "matches",
        "fits",
        "best",
        "describes",
        "or",
        "and",
        "nor",
        "correctly",
        "corresponds",
        "because",
        "since",
        "as",
        "which",
        "given",
        "due",
    }
)
_WS_RE = re.compile(r"\s+")


_JSON_KEYS = ("answer", "final_answer", "choice", "option", "correct_answer", "correct_option")
_FENCE_RE = re.compile(r"^```[\w-]*\s*|\s*```$")


def _json_answer(text: str) -> str | None:
    """The answer held by a JSON object (`{"answer": "c"}`), or None."""
    body = _FENCE_RE.sub("", text.strip())
    if not (body.startswith("{") and body.endswith("}")):
        return None
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    keys = {str(k).casefold(): v for k, v in value.items()}
    found = next((keys[k] for k in _JSON_KEYS if k in keys), None)
    if found is None and len(value) == 1:
        found = next(iter(value.values()))
    if isinstance(found, list):
        return ", ".join(str(v) for v in found)  # several: a list, never one option
    return str(found) if isinstance(found, str | int | float) else None


def _clean(text: str) -> str:
    """Drop the wrapping around an answer; keep its words."""
    text = _json_answer(text) or text
    boxed = last_boxed(text)
    if boxed:
        text = boxed
    text = _TEXT_CMD_RE.sub(r"\1", text)
    text = _MARKUP_RE.sub("", text)
    phrase = answer_phrase(text)
    if phrase:
        text = phrase
    text = _PREFIX_RE.sub("", _WS_RE.sub(" ", text).strip())
    return text.strip().strip("\"'“”‘’").strip()


def _norm_text(text: str) -> str:
    """Option-text form: case-folded, whitespace collapsed, no closing period or quotes."""
    return _WS_RE.sub(" ", text).strip().strip("\"'“”‘’").rstrip(".").strip().casefold()


def _letter_of_text(text: str, choices: tuple[str, ...] | None) -> str | None:
    if not choices:
        return None
    wanted = _norm_text(_MARKUP_RE.sub("", text))
    for index, choice in enumerate(choices):
        if wanted and _norm_text(_MARKUP_RE.sub("", choice)) == wanted:
            return chr(ord("A") + index)
    return None


# -- mentions of options in running text ------------------------------------------------

# A mention: (start, end, letter) of one place the answer names an option.
Mention = tuple[int, int, str]
_WINDOW = 40  # characters looked at around a mention for a negation
_SCAN_CHARS = 4000  # only the end of a long answer is read for mentions
_LETTER_LIST = r"(?:[(\[]?[A-Z][)\]]?\s*(?:,|\band\b|\bor\b|\bnor\b)\s*)*"
# Words before a mention that rule it out: "not", "can't be", "rule out A and", "no".
_NEGATED_BEFORE_RE = re.compile(
    r"(?i:\bnot|n't|\bnever|\bcannot|\bno|\brule[sd]?\s+out|\bruling\s+out|\beliminat\w*"
    r"|\bexclud\w*|\bexcept|\binstead\s+of|\brather\s+than|\bneither|\bnor)"
    r"\s+(?i:(?:be|a|an|the|option|choice|answer)\s+)*" + _LETTER_LIST + r"[(\[]?$"
)
# Words after a mention (or a list of them) that rule it out: "B is wrong", "A isn't",
# "A? No."
_NEGATED_AFTER_RE = re.compile(
    r"[)\]]?\s*\?\s*(?i:no|nope)\b|"
    r"[)\].]?\s*(?:(?:,|\band\b|\bor\b)\s*[(\[]?[A-Z][)\]]?\s*)*"
    r"(?i:(?:is|are|was|were|seems|appears|looks|would\s+be|can\s+be|must\s+be|should\s+be)\s+)?"
    r"(?i:(?:both|also|clearly|definitely|obviously|too|then)\s+)?"
    r"(?i:\w*n't\b|not\b|wrong|incorrect|false|unlikely|impossible|invalid|eliminated|"
    r"excluded|ruled\s+out|out\b)"
)
# After these words, only what follows counts: a self-correction or a conclusion.
_TURN_RE = re.compile(
    r"(?i:\bbut\b|\bhowever\b|\bactually\b|\bwait\b|\binstead\b|\brather\b|\bon\s+second\s+"
    r"thought\b|\blooking\s+again\b|\bupon\s+(?:further\s+)?reflection\b|\bcorrection\b|"
    r"\bno\s*,|\bso\b|\btherefore\b|\bthus\b|\bhence\b|\bleaving\b|\bre-?check\w*)"
)
# A choice that is one number and perhaps a unit: "30 cm", "$45", "60°", "2.5 kg".
_NUMERIC_CHOICE_RE = re.compile(r"[$€£¥]?\s*([-−]?\d+(?:\.\d+)?)(?:\s*[^\d\s][^\d]*)?")


def _negated(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - _WINDOW) : start]
    return bool(
        _NEGATED_BEFORE_RE.search(before) or _NEGATED_AFTER_RE.match(text, end, end + _WINDOW)
    )


def _letter_mentions(text: str, limit: int) -> list[Mention]:
    """Letters named in running text, within the first `limit` options."""
    found = [(m.start(), m.end(), m.group(1).upper()) for m in _PAREN_LETTER_RE.finditer(text)]
    found += [(m.start(1), m.end(1), m.group(1).upper()) for m in _NAMED_LETTER_RE.finditer(text)]
    for match in _UPPER_LETTER_RE.finditer(text):
        letter, next_word = match.group(1), match.group(2)
        if letter in "AI" and next_word and next_word.strip() not in _AFTER_LETTER:
            continue  # "A cat", "I think": article or pronoun
        found.append((match.start(1), match.end(1), letter))
    return [m for m in found if ord(m[2]) - ord("A") < limit]


def _choice_pattern(choice: str) -> re.Pattern[str] | None:
    words = _norm_text(_MARKUP_RE.sub("", choice)).split()
    if not words:
        return None
    body = r"\s+".join(re.escape(word) for word in words)
    if len(words[-1]) >= 3 and words[-1].isalpha():
        body += "(?:e?s)?"  # "two horses" names the option "horse"
    return re.compile(rf"(?<![\w.]){body}(?!\w|[.,]\d)", re.IGNORECASE)


def _choice_value(choice: str) -> Decimal | None:
    match = _NUMERIC_CHOICE_RE.fullmatch(_WS_RE.sub(" ", choice).strip())
    return _decimal(match.group(1)) if match else None


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace("−", "-"))
    except InvalidOperation:
        return None


def _text_mentions(text: str, choices: tuple[str, ...]) -> list[Mention]:
    """Option texts named as whole words, and option numbers stated without their unit."""
    found: list[Mention] = []
    values: dict[Decimal, set[str]] = {}
    for index, choice in enumerate(choices):
        letter = chr(ord("A") + index)
        pattern = _choice_pattern(choice)
        if pattern is not None:
            found += [(m.start(), m.end(), letter) for m in pattern.finditer(text)]
        value = _choice_value(choice)
        if value is not None:
            values.setdefault(value, set()).add(letter)
    if values:
        for start, end, value in number.numbers(text):  # digits and words: "twelve"
            letters = values.get(value)
            if letters and len(letters) == 1:
                found.append((start, end, next(iter(letters))))
    # "dark red" holds the option "red": a mention inside a longer one does not count
    found.sort(key=lambda m: (m[0], -m[1]))
    kept: list[Mention] = []
    for mention in found:
        if kept and mention[1] <= kept[-1][1]:
            continue
        kept.append(mention)
    return kept


def _inside(position: int, spans: list[Mention]) -> bool:
    """Whether `position` falls in one of `spans` (sorted by start, none nested)."""
    index = bisect.bisect_right(spans, position, key=lambda m: m[0]) - 1
    return index >= 0 and position < spans[index][1]


def _named_option(text: str, choices: tuple[str, ...] | None, limit: int,
                  option_text: bool) -> str | None:
    """The one option a sentence names, after negations and self-corrections; else None."""
    text = text[-_SCAN_CHARS:]  # the choice is stated last; a bounded scan stays cheap
    mentions = _letter_mentions(text, limit)
    if option_text and choices:
        texts = _text_mentions(text, choices)
        # a letter inside an option's own text ("vitamin C") is part of that text
        mentions = [m for m in mentions if not _inside(m[0], texts)] + texts
    live = sorted(m for m in mentions if not _negated(text, m[0], m[1]))
    if not live:
        return None
    # the last turn that still has a mention after it
    turn_end = 0
    for turn in _TURN_RE.finditer(text, 0, live[-1][0]):
        turn_end = turn.end()
    letters = {m[2] for m in live if m[0] >= turn_end}
    return letters.pop() if len(letters) == 1 else None


def extract_letter(
    text: str, choices: tuple[str, ...] | None, max_options: int = 26, option_text: bool = True
) -> str:
    """The option letter named by an answer text, or the cleaned text when there is none.

    `option_text=False` reads only letters and the exact option text, not option texts or
    numbers inside a sentence (the math verifier: `\\sqrt{2}` does not name the option `2`).
    """
    cleaned = _clean(text)
    limit = len(choices) if choices else max_options
    by_text = _letter_of_text(cleaned, choices)
    if by_text:
        return by_text
    lone = _LONE_LETTER_RE.match(cleaned)
    if lone:
        return lone.group(1).upper()
    if _LETTER_LIST_RE.match(cleaned) or _hedges(cleaned, limit):
        return cleaned
    leading = _LEADING_LETTER_RE.match(cleaned)
    if leading:
        return next(g for g in leading.groups()[:3] if g).upper()
    head, _, rest = cleaned.partition(" ")
    if len(head) == 1 and head.isupper() and ord(head) - ord("A") < limit:
        # "B because ...", "C is correct", "B cat" (that option's text); but "A cat" and
        # "I think" are an article and a pronoun, and "B is wrong" rules B out.
        next_word = rest.split(" ", 1)[0]
        article = head in "AI" and next_word not in _AFTER_LETTER
        if (not article or _letter_of_text(rest, choices) == head) and not _negated(
            cleaned, 0, 1
        ):
            return head
        if article and _letter_of_text(rest, choices):
            return cleaned  # "A cat": option A, or the article and option B's text
    return _named_option(cleaned, choices, limit, option_text) or cleaned


def _hedges(text: str, limit: int) -> bool:
    for match in _HEDGE_RE.finditer(text):
        first, second = match.group(1), match.group(2)
        # "a or b" in lower case inside a sentence may be words; require letters in range
        # and at least one of them upper case or bracketed.
        in_range = all(ord(x.upper()) - ord("A") < limit for x in (first, second))
        explicit = first.isupper() or second.isupper() or "(" in match.group(0)
        if in_range and explicit and not _negated(text, match.start(), match.end()):
            return True  # "rule out A and B" is no hedge
    return False


def extract(response: str, options: Options, context: ItemContext) -> str | None:
    answer = extract_tagged(response, options, context)
    if answer is None:
        return None
    return extract_letter(answer, context.choices, options.max_options) or None


def _gold_letters(reference: Reference, choices: tuple[str, ...] | None) -> list[str]:
    """The gold as letters (or as option text when it is no letter and there are no choices)."""
    golds = golds_of(reference)
    letters = []
    for gold in golds:
        text = str(gold).strip()
        by_text = _letter_of_text(text, choices)
        if by_text:
            letters.append(by_text)
            continue
        lone = _LONE_LETTER_RE.match(text) or _LEADING_LETTER_RE.match(text)
        if lone:
            letters.append(next(g for g in lone.groups()[:3] if g).upper())
        elif text:
            letters.append(_norm_text(text))
    return letters


def _is_letter(value: str) -> bool:
    return len(value) == 1 and "A" <= value <= "Z"


def compare(
    extracted: str, reference: Reference, options: Options, context: ItemContext
) -> Verdict:
    golds = _gold_letters(reference, context.choices)
    if not golds:
        return Verdict(0.0, {"accuracy": 0.0}, status="error", message="empty reference")
    if not _is_letter(extracted):
        # No single letter: only an option-text gold (no choices given) can still match.
        if _norm_text(extracted) in golds:
            return Verdict(1.0, {"accuracy": 1.0})
        return Verdict(
            0.0, {"accuracy": 0.0}, message="the answer names no single option (or several)"
        )
    if context.choices and ord(extracted) - ord("A") >= len(context.choices):
        return Verdict(
            0.0,
            {"accuracy": 0.0},
            message=f"option {extracted} is outside the {len(context.choices)} choices",
        )
    score = 1.0 if extracted in golds else 0.0
    return Verdict(score, {"accuracy": score})
