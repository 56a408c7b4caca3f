"""Finding the answer in a completion, and checking the completion's format.

The recipe's contract (RECIPE.md): the answer is the content of the LAST complete
`<answer>...</answer>` block; no block means no answer. Models sometimes put spaces
inside the tags (`< answer >`, `</ answer>`), which we accept.

`strict_tags=False` is for frameworks whose prompts do not ask for tags: it falls back to
the last `\\boxed{...}`, then the last "Answer: X" / "the final answer is X" phrase, then
the last non-empty line.

Format rewards (1.0 or 0.0):
- answer-only: the whole completion is exactly one `<answer>...</answer>` block,
  whitespace around it allowed;
- chain of thought: exactly one `<think>...</think>` followed by exactly one
  `<answer>...</answer>`, whitespace around and between allowed.

All patterns here are linear (no nested quantifiers) so that they are safe to run in
the server process on bounded, untrusted text.
"""

from __future__ import annotations

import re

_OPEN = r"<\s*{tag}\s*>"
_CLOSE = r"<\s*/\s*{tag}\s*>"


def _tag_re(tag: str) -> re.Pattern[str]:
    return re.compile(
        _OPEN.format(tag=tag) + r"(.*?)" + _CLOSE.format(tag=tag), re.DOTALL | re.IGNORECASE
    )


ANSWER_RE = _tag_re("answer")
THINK_RE = _tag_re("think")
_ANSWER_OPEN_RE = re.compile(_OPEN.format(tag="answer"), re.IGNORECASE)
_THINK_OPEN_RE = re.compile(_OPEN.format(tag="think"), re.IGNORECASE)

_ANSWER_ONLY_RE = re.compile(r"\s*" + ANSWER_RE.pattern + r"\s*", re.DOTALL | re.IGNORECASE)
_COT_RE = re.compile(
    r"\s*" + THINK_RE.pattern + r"\s*" + ANSWER_RE.pattern + r"\s*", re.DOTALL | re.IGNORECASE
)

# "Answer: X", "The final answer is X", "answer is (B)." — the phrase, then the rest of
# that line.
_ANSWER_PHRASE_RE = re.compile(
    r"(?:final\s+answer|answer)\s*(?:is|:|=)\s*:?\s*([^\n]+)", re.IGNORECASE
)

# A box [a, b, c, d] of plain numbers, as the recipe looks for in spatial-reasoning
# thoughts.
_BOX_RE = re.compile(
    r"\[\s*-?\d+(?:\.\d+)?\s*,\s*-?\d+(?:\.\d+)?\s*,\s*-?\d+(?:\.\d+)?\s*,\s*-?\d+(?:\.\d+)?\s*\]"
)


def last_tag_content(text: str, tag: str = "answer") -> str | None:
    """Content of the last complete `<tag>...</tag>` block, stripped; None if there is none."""
    pattern = ANSWER_RE if tag == "answer" else THINK_RE if tag == "think" else _tag_re(tag)
    last = None
    for match in pattern.finditer(text):
        last = match
    return None if last is None else last.group(1).strip()


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), braces balanced; None if none."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        # `\boxed 5` without braces
        rest = text[start:].split(None, 1)
        return rest[1].strip().rstrip("$") if len(rest) == 2 else None
    depth = 0
    for i in range(brace, len(text)):
        char = text[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : i].strip()
    return None


def answer_phrase(text: str) -> str | None:
    """The text after the last "answer is" / "Answer:" phrase, on its line."""
    last = None
    for match in _ANSWER_PHRASE_RE.finditer(text):
        last = match
    if last is None:
        return None
    value = last.group(1).strip()
    return value or None


def last_line(text: str) -> str | None:
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return None


def extract_answer(response: str, strict_tags: bool = True) -> str | None:
    """The answer text of a completion, following the recipe (see module docstring)."""
    tagged = last_tag_content(response, "answer")
    if tagged is not None or strict_tags:
        return tagged
    for finder in (last_boxed, answer_phrase, last_line):
        found = finder(response)
        if found:
            return found
    return None


def format_reward(response: str, chain_of_thought: bool) -> float:
    """1.0 when the completion has exactly the layout the stage's prompt asks for."""
    pattern = _COT_RE if chain_of_thought else _ANSWER_ONLY_RE
    if not pattern.fullmatch(response):
        return 0.0
    if len(_ANSWER_OPEN_RE.findall(response)) != 1:
        return 0.0
    thinks = len(_THINK_OPEN_RE.findall(response))
    return 1.0 if thinks == (1 if chain_of_thought else 0) else 0.0


def think_has_box(response: str) -> bool:
    """Whether any `<think>` block states a box `[a, b, c, d]` (the spatial bonus)."""
    return any(_BOX_RE.search(m.group(1)) for m in THINK_RE.finditer(response))
