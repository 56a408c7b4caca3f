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

The ambiguous word forms: a lone upper-case `A` or `I` inside a sentence is usually the
article or the pronoun ("A cat", "I think"), so in running text they count as letters only
when followed by punctuation, a conjunction or a verb of judgement ("A is correct"). Lower
case letters count only in explicit forms: the whole answer (`b`), `(b)`, `b)`, `b.` at
the start, or after "option"/"choice".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reward_server.extraction import answer_phrase, last_boxed
from reward_server.types import ItemContext, Reference, Verdict
from reward_server.verifiers.base import BaseOptions, extract_tagged, option


@dataclass(frozen=True)
class Options(BaseOptions):
    max_options: int = option(  # type: ignore[assignment]
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


def _clean(text: str) -> str:
    """Drop the wrapping around an answer; keep its words."""
    boxed = last_boxed(text)
    if boxed:
        text = boxed
    text = _TEXT_CMD_RE.sub(r"\1", text)
    text = _MARKUP_RE.sub("", text)
    phrase = answer_phrase(text)
    if phrase:
        text = phrase
    text = _PREFIX_RE.sub("", _WS_RE.sub(" ", text).strip())
    return text.strip()


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


def _letters_in_sentence(text: str, limit: int) -> set[str]:
    """Letters named in running text, within the first `limit` options."""
    found = {m.group(1).upper() for m in _PAREN_LETTER_RE.finditer(text)}
    found |= {m.group(1).upper() for m in _NAMED_LETTER_RE.finditer(text)}
    for match in _UPPER_LETTER_RE.finditer(text):
        letter, next_word = match.group(1), match.group(2)
        if letter in "AI" and next_word and next_word.strip() not in _AFTER_LETTER:
            continue  # "A cat", "I think": article or pronoun
        found.add(letter)
    return {letter for letter in found if ord(letter) - ord("A") < limit}


def extract_letter(text: str, choices: tuple[str, ...] | None, max_options: int = 26) -> str:
    """The option letter named by an answer text, or the cleaned text when there is none."""
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
        # "I think" are an article and a pronoun.
        next_word = rest.split(" ", 1)[0]
        if head not in "AI" or next_word in _AFTER_LETTER or _letter_of_text(rest, choices) == head:
            return head
    letters = _letters_in_sentence(cleaned, limit)
    if len(letters) == 1:
        return letters.pop()
    return cleaned


def _hedges(text: str, limit: int) -> bool:
    for match in _HEDGE_RE.finditer(text):
        first, second = match.group(1), match.group(2)
        # "a or b" in lower case inside a sentence may be words; require letters in range
        # and at least one of them upper case or bracketed.
        in_range = all(ord(x.upper()) - ord("A") < limit for x in (first, second))
        if in_range and (first.isupper() or second.isupper() or "(" in match.group(0)):
            return True
    return False


def extract(response: str, options: Options, context: ItemContext) -> str | None:
    answer = extract_tagged(response, options, context)
    if answer is None:
        return None
    return extract_letter(answer, context.choices, options.max_options) or None


def _gold_letters(reference: Reference, choices: tuple[str, ...] | None) -> list[str]:
    """The gold as letters (or as option text when it is no letter and there are no choices)."""
    golds = reference if isinstance(reference, list) else [reference]
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
