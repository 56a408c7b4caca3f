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
from collections import deque
from collections.abc import Iterator
from functools import cache

_OPEN = r"<\s*{tag}\s*>"
_CLOSE = r"<\s*/\s*{tag}\s*>"


@cache
def _tag_res(tag: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The opening and closing patterns of `<tag>`, spaces inside the brackets allowed."""
    return (
        re.compile(_OPEN.format(tag=re.escape(tag)), re.IGNORECASE),
        re.compile(_CLOSE.format(tag=re.escape(tag)), re.IGNORECASE),
    )


# "Answer: X", "The final answer is X", "answer is (B)." — the phrase; the answer is the
# rest of its line.
_ANSWER_PHRASE_RE = re.compile(r"(?:final\s+answer|answer)\s*(?:is|:|=)\s*:?", re.IGNORECASE)

# A box [a, b, c, d] of plain numbers, as the recipe looks for in spatial-reasoning
# thoughts.
_BOX_RE = re.compile(
    r"\[\s*-?\d+(?:\.\d+)?\s*,\s*-?\d+(?:\.\d+)?\s*,\s*-?\d+(?:\.\d+)?\s*,\s*-?\d+(?:\.\d+)?\s*\]"
)

_FENCE = "```"
_FENCE_LANGUAGE_RE = re.compile(r"[\w+-]*\s*")


def _layout(*tags: str) -> re.Pattern[str]:
    """`<t1>...</t1> <t2>...</t2>` filling the whole text, whitespace around allowed."""
    body = r"\s*".join(
        _OPEN.format(tag=t) + r".*?" + _CLOSE.format(tag=t) for t in tags
    )
    return re.compile(r"\s*" + body + r"\s*", re.DOTALL | re.IGNORECASE)


_ANSWER_ONLY_RE = _layout("answer")
_COT_RE = _layout("think", "answer")


def tag_blocks(text: str, tag: str) -> Iterator[tuple[int, int]]:
    """(start, end) of the content of every complete `<tag>...</tag>` block, in order.

    Each closing tag pairs with the latest opening tag before it that no earlier closing
    tag took. Two forward scans: a lazy `<tag>(.*?)</tag>` search is quadratic on a
    response of many unclosed tags, and this runs in the server process.
    """
    opening_re, closing_re = _tag_res(tag)
    events = sorted(
        [(m.start(), m.end(), True) for m in opening_re.finditer(text)]
        + [(m.start(), m.end(), False) for m in closing_re.finditer(text)]
    )
    content_start: int | None = None
    for start, end, is_open in events:
        if is_open:
            content_start = end
        elif content_start is not None:
            yield content_start, start
            content_start = None


def count_tags(text: str, tag: str) -> tuple[int, int]:
    """How many opening and closing `<tag>`s the text has."""
    opening_re, closing_re = _tag_res(tag)
    return len(opening_re.findall(text)), len(closing_re.findall(text))


def last_tag_content(text: str, tag: str = "answer") -> str | None:
    """Content of the last complete `<tag>...</tag>` block, stripped; None if there is none.

    The last closing tag, then the last opening tag before it (linear, see `tag_blocks`).
    """
    opening_re, closing_re = _tag_res(tag)
    last_close = deque(closing_re.finditer(text), maxlen=1)
    if not last_close:
        return None
    close = last_close[0].start()
    last_open = deque(opening_re.finditer(text, 0, close), maxlen=1)
    return text[last_open[0].end() : close].strip() if last_open else None


def last_fenced_block(text: str) -> str | None:
    """The body of the last ``` fenced block (or of a final fence cut off), language dropped."""
    parts = text.split(_FENCE)
    if len(parts) < 2:
        return None
    # parts[1], parts[3], ... are fenced bodies; an even count of parts means the last
    # fence never closed (a truncated answer): its body runs to the end.
    body = parts[-2] if len(parts) % 2 == 1 else parts[-1]
    newline = body.find("\n")
    if newline >= 0 and _FENCE_LANGUAGE_RE.fullmatch(body[:newline]):
        body = body[newline + 1 :]
    return body.strip() or None


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
    """The text after the last "answer is" / "Answer:" phrase, on its line.

    The last phrase wins even on one line ("The answer is A. Wait: the answer is B.").
    """
    for match in reversed(list(_ANSWER_PHRASE_RE.finditer(text))):
        line_end = text.find("\n", match.end())
        value = text[match.end() : line_end if line_end >= 0 else len(text)].strip()
        if value:
            return value
    return None


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
    """1.0 when the completion has exactly the layout the stage's prompt asks for.

    The tags are counted first: with exactly one of each, the layout check is one
    forward pass (no backtracking over many closing tags).
    """
    if count_tags(response, "answer") != (1, 1):
        return 0.0
    thinks = count_tags(response, "think")
    if thinks != ((1, 1) if chain_of_thought else (0, 0)):
        return 0.0
    pattern = _COT_RE if chain_of_thought else _ANSWER_ONLY_RE
    return 1.0 if pattern.fullmatch(response) else 0.0


def think_has_box(response: str) -> bool:
    """Whether any `<think>` block states a box `[a, b, c, d]` (the spatial bonus)."""
    return any(_BOX_RE.search(response, start, end) for start, end in tag_blocks(response, "think"))
