"""Math answers too costly to evaluate: refused before sympy sees them.

`costly_operation(text)` names a power whose numeric exponent is itself huge
(`9^{9^{9^{9}}}`, `2^{2^{100}}`) or the factorial of a huge number (`(10^{100})!`); sympy
would compute such a value, or fail to within Math-Verify's time limit, for many seconds.
The `math-expressions` verifier answers `rejected` for them (the response's fault, scored
as a wrong answer). String work only, linear for a bounded nesting depth.
"""

from __future__ import annotations

import math
import re

# Largest exponent and factorial operand evaluated (as log10 of the value): 2^{100000}
# and 100000! are exact integers of a few hundred thousand digits, cheap for sympy.
_MAX_EXPONENT_LOG10 = 5.0
_MAX_FACTORIAL_LOG10 = 5.0
_TOWER_RE = re.compile(r"(\d{1,6})\s*\^\s*(.+)", re.DOTALL)


def costly_operation(text: str) -> str | None:
    """Why evaluating an answer would explode, or None: a power whose numeric exponent is
    itself huge (`9^{9^{9^{9}}}`, `2^{2^{100}}`: over 10^5), the factorial of a number over
    10^5 (`(10^{100})!`). Exponents with letters (`e^{x^2}`) and small towers
    (`2^{2^{3}}`) are left alone. Linear in the text for a bounded nesting depth (the
    caller bounds both)."""
    for index, char in enumerate(text):
        if char == "^":
            exponent = _group_after(text, index + 1)
            size = _log10_value(exponent)
            if size is not None and size > _MAX_EXPONENT_LOG10:
                return f"the exponent {exponent[:40]} is too large to evaluate"
        elif char == "!" and index > 0:
            operand = _group_before(text, index)
            size = _log10_value(operand)
            if size is not None and size > _MAX_FACTORIAL_LOG10:
                return f"the factorial of {operand[:40]} is too large to evaluate"
    return None


def _log10_value(group: str) -> float | None:
    """log10 of a numeric tower (`9^{9^{9}}`, `10`, `3!`), inf when it overflows; None
    for anything else (letters, sums), which is left to sympy and its time limits."""
    text = group.strip()
    while len(text) > 1 and text[0] + text[-1] in ("{}", "()"):
        text = text[1:-1].strip()
    if text.isdigit():
        return math.log10(int(text)) if int(text) > 0 else 0.0
    if text.endswith("!") and text[:-1].strip().isdigit() and len(text) < 8:
        return math.lgamma(int(text[:-1]) + 1) / math.log(10)
    if match := _TOWER_RE.fullmatch(text):
        base, exponent = int(match.group(1)), _log10_value(_group_after(match.group(2), 0))
        if exponent is None or base < 2:
            return None if exponent is None else 0.0
        if exponent > 300:
            return math.inf
        return 10**exponent * math.log10(base)
    return None


def _group_after(text: str, start: int) -> str:
    """The `{...}` group (or the single token) that starts at `start`."""
    while start < len(text) and text[start] == " ":
        start += 1
    if start >= len(text):
        return ""
    if text[start] != "{":
        end = start + 1
        while end < len(text) and text[end].isdigit() and text[start].isdigit():
            end += 1
        return text[start:end]
    depth = 0
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start + 1 : index]
    return text[start + 1 :]


def _group_before(text: str, end: int) -> str:
    """The bracketed group (or the number) that ends just before `end`."""
    closing = text[end - 1]
    if closing.isdigit():
        start = end - 1
        while start > 0 and text[start - 1].isdigit():
            start -= 1
        return text[start:end]
    if closing not in ")}":
        return ""
    opening = "(" if closing == ")" else "{"
    depth = 0
    for index in range(end - 1, -1, -1):
        if text[index] == closing:
            depth += 1
        elif text[index] == opening:
            depth -= 1
            if depth == 0:
                return text[index + 1 : end - 1]
    return text[: end - 1]
