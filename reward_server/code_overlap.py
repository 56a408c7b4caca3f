"""The recipe's code-overlap terms for markup (SVG and HTML): token and tag-name Jaccard.

Both are Jaccard indices |A & B| / |A | B| of two SETS (order and counts are ignored), as in
the reference implementation's `svg-code` and `html-code` rewards (RECIPE.md):

- tokens: lower-cased word runs (`\\w+`), hex colours (`#ff0000`) and the markup
  punctuation `< > = / "`;
- tag names: the lower-cased names of opening tags (`<circle ...>` gives `circle`;
  closing tags repeat those names and add nothing to a set).

Two texts with nothing to compare (both sets empty) score 0.0, as the recipe does for a
reference without tokens: an empty answer must never earn overlap credit.

These terms alone are easy to game (a tag skeleton shares most tokens with any page), so
the verifiers report them as components next to a rendered comparison rather than as the
whole reward. The patterns have no nested quantifiers and do not need a closing `>`, so
they run in linear time on truncated or hostile input.
"""

from __future__ import annotations

import re

_TOKEN_RE = re.compile(r"#[0-9a-f]+|\w+|[<>=/\"]")
_TAG_NAME_RE = re.compile(r"<([a-z][\w:.-]*)")


def tokens(text: str) -> set[str]:
    """The set of the recipe's code tokens in `text` (lower-cased)."""
    return set(_TOKEN_RE.findall(text.lower()))


def tag_names(text: str) -> set[str]:
    """The set of opening-tag names in `text` (lower-cased, namespace prefix kept)."""
    return set(_TAG_NAME_RE.findall(text.lower()))


def jaccard(a: set[str], b: set[str]) -> float:
    """|a & b| / |a | b|; 0.0 when both are empty."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def token_jaccard(a: str, b: str) -> float:
    """Jaccard index of the two texts' token sets, in [0, 1]."""
    return jaccard(tokens(a), tokens(b))


def tag_jaccard(a: str, b: str) -> float:
    """Jaccard index of the two texts' opening-tag-name sets, in [0, 1]."""
    return jaccard(tag_names(a), tag_names(b))
