"""Text-level work on math answers: finding the final answer, normalizing it, reading
plain numbers and option letters. No sympy here: everything is linear-time string work,
safe to run in the server process on untrusted text.

What the `math-expressions` verifier builds on:
- `final_answer(text)`: the part of an answer block that states the result (the last
  `\\boxed{}` group, the text after "final answer is" up to the end of its sentence, the
  last `$...$` span of a sentence, the value after a concluding "so"/"thus"/"therefore",
  the last line of a multi-line computation, the result of an arithmetic chain
  `2 + 3 \\cdot 4 = 14`), so that `x = \\boxed{3}`, "The answer is $\\frac{\\pi}{2}$." or a
  whole solution written inside the answer tag give the final value.
- `normalize(text)`: one spelling per answer (`\\dfrac`/`\\tfrac` -> `\\frac`, no `\\left`,
  no spacing commands, no `^\\circ`, no `\\text{}` wrappers, no outer `$`; a column or
  row vector `\\begin{pmatrix}4\\\\5\\end{pmatrix}` -> the tuple `(4,5)`, as Qwen2.5-Math's
  grader compares them; `i` -> `I`, sympy's imaginary unit, when it is the only letter of
  an expression such as `|6+8i|`), used as the cache key and for the "identical strings"
  fast path.
- `plain_number(text)`: integers, decimals, fractions (`3/4`, `\\frac{3}{4}`), thousands
  separators (`1,000`, `1{,}000`, `1 000`), percent, scientific notation
  (`1.5e3`, `1.5\\times 10^{3}`), repeating decimals (`0.\\overline{6}`, `0.1\\dot{6}`),
  currency signs and trailing unit words, read exactly as `fractions.Fraction` so that
  plain numbers are compared without sympy.
- `gold_letter(text)`: the option letter a reference is (`A`, `(B)`); the letter an
  answer names is read by the `multiple-choice` verifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

# -- finding the final answer ----------------------------------------------------------

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_FINAL_PHRASE_RE = re.compile(
    r"(?:final\s+answer\s*(?:is|:)|answer\s*(?:is|:)|answer\s*=)\s*:?", re.IGNORECASE
)
_LEADING_ANSWER_RE = re.compile(
    r"^(?:the\s+)?(?:final\s+)?answer\b\s*(?:is\b)?\s*[:=]?\s*", re.IGNORECASE
)
_HOPE_RE = re.compile(r"\bI\s+hope\s+it\s+is\s+correct\b.*", re.IGNORECASE | re.DOTALL)
# A math span inside prose: $$...$$, $...$, \[...\], \(...\).
_MATH_SPAN_RE = re.compile(
    r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<![\\$])\$([^$]+?)\$", re.DOTALL
)
_SPAN_SCAN_CHARS = 4000
# A word of three letters or more, not a LaTeX command; for prose, not an environment
# name either (\begin{pmatrix} is a formula).
_WORD_RE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")
_PROSE_WORD_RE = re.compile(r"(?<![\\a-zA-Z{])[a-zA-Z]{3,}")
# Boxes closer than this (in characters) are one answer: "\boxed{-2} and \boxed{1}".
_BOX_JOIN_GAP = 40
_MAX_JOINED_BOXES = 16
# What may stand between the boxed parts of one answer: math delimiters, a variable name
# ("$x = \\boxed{2}$ or $x = \\boxed{3}$"), `\\text{...}` notes ("for part (a) and") and a
# joiner ("and", "or", a comma, a \\quad); words outside math mean an earlier result.
_BETWEEN_BOXES_RE = re.compile(
    r"(?:\s|\$|[,;]|\\[()\[\]]|\\q?quad|\\text\s*\{[^{}]*\}|\band\b|\bor\b"
    r"|[a-zA-Z](?:_\{?\w+\}?)?\s*=)*"
)
_JOINER_RE = re.compile(r"[,;]|\band\b|\bor\b|\\q?quad")
# The end of a sentence: a period before a capital or an opening bracket.
_SENTENCE_END_RE = re.compile(r"(?<!\d)\.\s+(?=[A-Z(\[])|(?<=\d)\.\s+(?=[A-Z(\[])")
# Words that introduce a solution's result.
_CONCLUSION_RE = re.compile(
    r"\b(?:so|thus|therefore|hence|giving|gives|yields|finally|we\s+get|we\s+obtain)\b,?",
    re.IGNORECASE,
)
# An arithmetic left-hand side: numbers, operators and LaTeX operator commands, then "=".
_ARITHMETIC_LHS_RE = re.compile(
    r"[-+]?(?:[\d.,\s()+\-*/^{}\[\]]|\\(?:times|cdot|div|frac|dfrac|tfrac|sqrt|left|right)"
    r"(?![a-zA-Z]))+=(?!=)"
)
_RELATION_RE = re.compile(r"[<>]|\\(?:le|ge|leq|geq|ne|neq|approx)(?![a-zA-Z])")
_SENTENCE_NUMBER_RE = re.compile(r"(?<![\w.])[-+]?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?%?(?![\w])")
_CONJUNCTIONS_RE = re.compile(r"[\s,;.]*(?:and[\s,;.]+)*", re.IGNORECASE)


def boxed_groups(text: str) -> list[tuple[int, int, str]]:
    """Every top-level `\\boxed{...}`/`\\fbox{...}`: (start, end, content), braces balanced."""
    groups: list[tuple[int, int, str]] = []
    position = 0
    while True:
        match = _BOX_RE.search(text, position)
        if match is None:
            return groups
        depth = 0
        for i in range(match.end() - 1, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    groups.append((match.start(), i + 1, text[match.end() : i]))
                    position = i + 1
                    break
        else:
            return groups  # unbalanced: the rest of the text has no complete box


def final_answer(text: str) -> str:
    """The part of an answer block that states the result (see module docstring)."""
    text = _HOPE_RE.sub("", text).strip()
    boxes = boxed_groups(text)
    if boxes:
        # The last box, plus boxes just before it ("\\boxed{-2} and \\boxed{1}").
        chosen = [boxes[-1]]  # from the last box backwards
        for box in reversed(boxes[-_MAX_JOINED_BOXES:-1]):
            between = text[box[1] : chosen[-1][0]]
            joined = len(between) <= _BOX_JOIN_GAP and _BETWEEN_BOXES_RE.fullmatch(between) and (
                not between.strip() or _JOINER_RE.search(between))
            if not joined:
                break  # "$$\\boxed{20}$$ \\boxed{143}": an earlier result, not a part
            chosen.append(box)
        return ", ".join(content.strip() for _, _, content in reversed(chosen))
    unlabelled = _LEADING_ANSWER_RE.sub("", text)  # "Answer $9$", "Final answer: 9"
    if unlabelled != text:
        text = _SENTENCE_END_RE.split(unlabelled, 1)[0].strip()
    phrase = None
    for phrase in _FINAL_PHRASE_RE.finditer(text):  # noqa: B007 - we want the last one
        pass
    if phrase is not None:
        rest = text[phrase.end() :].strip()
        if rest:
            # "The answer is 12. (Check: 12 \\times 3 = 36.)": the phrase's own sentence
            text = _SENTENCE_END_RE.split(rest.split("\n", 1)[0], 1)[0].strip()
    text = _concluded(text)
    if not _WORD_RE.search(text):
        return _chain_result(text)
    # "the largest $n$ is 34": the value follows the last " is "
    head, is_, tail = text.rpartition(" is ")
    if is_ and tail.strip() and _WORD_RE.search(head) and len(_WORD_RE.findall(tail)) < 2:
        text = tail.strip()
    # words around math spans: the last span is the answer ("Answer $9$", "$125$ miles")
    scan = text[-_SPAN_SCAN_CHARS:]  # answers come last; a bounded scan stays linear
    spans = [next(g for g in m.groups() if g is not None).strip()
             for m in _MATH_SPAN_RE.finditer(scan)]
    if spans:
        outside = _MATH_SPAN_RE.sub(" ", scan)
        if _CONJUNCTIONS_RE.fullmatch(outside) and len(spans) > 1:
            return ", ".join(spans)  # "$1$ and $2$ and $3$": one answer in parts
        if _WORD_RE.search(outside):
            return spans[-1]
    elif len(_WORD_RE.findall(text)) >= 2:
        # "There are 12 triangles.": a sentence with one number states that number
        numbers = _SENTENCE_NUMBER_RE.findall(text)
        if len(numbers) == 1 and "\\" not in text:
            return numbers[0]
    return text


def _concluded(text: str) -> str:
    """The conclusion of a worked solution: the last line of a computation listing
    ("3 \\times 4 = 12" / "12 + 5 = 17"), or the formula after the last "so", "thus",
    "therefore" of a sentence without math spans ("..., so c = 5."); else `text`."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) >= 2 and all(_ARITHMETIC_LHS_RE.match(line) for line in lines):
        return lines[-1]
    if "$" in text or "\\(" in text or "\\[" in text or not _WORD_RE.search(text):
        return text
    conclusion = None
    for conclusion in _CONCLUSION_RE.finditer(text[-_SPAN_SCAN_CHARS:]):  # noqa: B007
        pass
    if conclusion is None:
        return text
    tail = text[-_SPAN_SCAN_CHARS:][conclusion.end() :].strip().rstrip(".").strip()
    return tail if tail and not _WORD_RE.search(tail) else text


def _chain_result(text: str) -> str:
    """`2 + 3 \\cdot 4 = 14` -> `14`: the value an arithmetic chain ends in; other text
    (an equation with a variable, `x^2 + y^2 = 25`) unchanged."""
    if _ARITHMETIC_LHS_RE.match(text):
        value = text.rpartition("=")[2].strip().rstrip(".").strip()
        if value and not _RELATION_RE.search(value):
            return value
    return text


def looks_like_prose(text: str) -> bool:
    """Two words (three letters or more, not LaTeX commands): a sentence, not a formula."""
    return len(_PROSE_WORD_RE.findall(text)) >= 2


# -- normalization ---------------------------------------------------------------------

# Unit words dropped after an answer (a closed list: "2 pi" or "3 xy" must keep meaning).
_UNITS = (
    r"(?:square|sq\.?|cubic|cu\.?) ?(?:units?|cm|mm|km|m|meters?|metres?|inch(?:es)?|feet|ft|"
    r"yards?|miles?)|units?|cm|mm|km|meters?|metres?|centimeters?|millimeters?|kilometers?|"
    r"inch(?:es)?|in\.|feet|foot|ft|yards?|yd|miles?|mi|kg|grams?|mg|lbs?|pounds?|ounces?|oz|"
    r"liters?|litres?|ml|mL|seconds?|sec|minutes?|mins?|hours?|hrs?|days?|weeks?|years?|"
    r"degrees?|deg|radians?|rad|dollars?|cents?|yuan|euros?|km/h|m/s|mph|people|students|"
    r"apples|books|cars|pieces|items|times|ways|cubes|balls|points|triangles|squares"
)
_POWER = r"(?:\^\{?[23]\}?|[²³])?"

_REPLACEMENTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        # unicode math as models type it
        ("\u2212|\u2013", "-"), ("\u00d7", r"\\times "), ("\u00b7|\u22c5", r"\\cdot "),
        ("\u03c0", r"\\pi "), ("\u221a", r"\\sqrt"), ("\u221e", r"\\infty "),
        ("\u2264", r"\\le "), ("\u2265", r"\\ge "), ("\u2260", r"\\ne "),
        # a vector in angle brackets is a tuple: \langle 4, 5 \rangle
        (r"\\langle(?![a-zA-Z])|\u27e8", "("), (r"\\rangle(?![a-zA-Z])|\u27e9", ")"),
        (r"\\[dtc]frac(?![a-zA-Z])", r"\\frac"),
        (r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|bigg|Bigg)(?![a-zA-Z])\s*([.]?)", ""),
        (r"\\(?:displaystyle|textstyle|scriptstyle)(?![a-zA-Z])", ""),
        # "10,\\!000": the negative space joins digit groups
        (r",\\!\s*", ","),
        (r"(?<!\\)\\!", ""),
        (r"\\(?:qquad|quad)(?![a-zA-Z])|(?<!\\)\\[,;: ]|~", " "),
        # degrees: ^\circ, ^{\circ}, \degree, °
        (r"\^\s*\{?\s*\\circ\s*\}?|\\degree(?![a-zA-Z])|°", ""),
        # units after an answer: \text{ cm}^2, "square units", "5 m"
        (rf"\\(?:text|textnormal|textrm|mbox|mathrm)\s*\{{\s*(?:{_UNITS})\s*\}}{_POWER}", " "),
        # \text{..}-style wrappers keep their content
        (r"\\(?:text|textbf|textit|textrm|textnormal|mbox|textup)\s*\{([^{}]*)\}", r" \1 "),
        (r"\{,\}", ","),
        (r"\\%|\\percent(?![a-zA-Z])", "%"),
        (r"\\\$", ""),
        (r"\s+", " "),
        # spaces around operators and brackets carry no meaning; after a comma they tell
        # a list ("32, 349") from a thousands separator ("32,349")
        (r" ?([=+\-()\[\]{}^_/*<>|]) ?", r"\1"),
        (r" ?, +", ", "),
        (r" ([,%])", r"\1"),
        (r"^\s+|\s+$", ""),
        (rf"(?<=[\w}})]) +(?:{_UNITS})(?: +(?:{_UNITS}))*{_POWER}$", ""),
        (rf"(?<=\d) ?[mgsl]{_POWER}$", ""),
    )
)
_OUTER_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"))


def strip_boxed(text: str) -> str:
    """`\\boxed{X}` (the whole text) -> `X`; other text unchanged."""
    text = text.strip()
    boxes = boxed_groups(text)
    if len(boxes) == 1 and boxes[0][0] == 0 and boxes[0][1] == len(text):
        return boxes[0][2]
    return text


def normalize(text: str) -> str:
    """One spelling per answer; meaning unchanged (see module docstring)."""
    text = text.strip()
    changed = True
    while changed:
        changed = False
        for opening, closing in _OUTER_DELIMITERS:
            if len(text) > len(opening) + len(closing) and text.startswith(opening) and (
                text.endswith(closing)
            ):
                text = text[len(opening) : -len(closing)].strip()
                changed = True
        unboxed = strip_boxed(text)
        if unboxed != text:
            text, changed = unboxed.strip(), True
        # a trailing "." ends a sentence ("12." is 12 anyway); an ellipsis is kept
        stripped = text if text.endswith("..") else text.rstrip(" .;,\\").lstrip(":")
        if stripped != text and stripped:
            text, changed = stripped.strip(), True
    text = vectors_as_tuples(text)
    for pattern, replacement in _REPLACEMENTS:
        text = pattern.sub(replacement, text)
    return _imaginary_unit(text.strip())


_MATRIX_BEGIN_RE = re.compile(r"\\begin\s*\{([pbBvV]?matrix)\}")
_COMMAND_RE = re.compile(r"\\[a-zA-Z]+")
_LONE_I_RE = re.compile(r"(?<![\\a-zA-Z])i(?![a-zA-Z])")


def vectors_as_tuples(text: str) -> str:
    """`\\begin{pmatrix}4\\\\5\\end{pmatrix}` (a column or a row) -> `(4,5)`; a matrix of
    several rows and columns is kept. One forward scan: each environment is closed by the
    next `\\end` of its name, found with `str.find`."""
    out, position = [], 0
    while (match := _MATRIX_BEGIN_RE.search(text, position)) is not None:
        closing = "\\end{" + match.group(1) + "}"
        end = text.find(closing, match.end())
        if end < 0:
            break
        rows = [row.strip() for row in text[match.end() : end].split("\\\\")]
        rows = [row for row in rows if row]
        cells = [[cell.strip() for cell in row.split("&")] for row in rows]
        if len(cells) > 1 and all(len(row) == 1 for row in cells):
            entries = [row[0] for row in cells]
        elif len(cells) == 1 and len(cells[0]) > 1:
            entries = cells[0]
        else:
            entries = []
        out.append(text[position : match.start()])
        if entries and all(entries):
            out.append("(" + ",".join(entries) + ")")
        else:
            out.append(text[match.start() : end + len(closing)])
        position = end + len(closing)
    out.append(text[position:])
    return "".join(out)


def _imaginary_unit(text: str) -> str:
    """`|6+8i|` -> `|6+8I|`: where `i` is the only letter, it is the imaginary unit (sympy's
    `I`); next to other letters, or in sums and equations, it may be an index."""
    if "i" not in text or "=" in text or "\\sum" in text or "\\prod" in text:
        return text
    letters = set(re.findall(r"[a-zA-Z]", _COMMAND_RE.sub("", text)))
    if letters != {"i"}:
        return text
    # latex2sympy drops the exponent of a bare `I^2`; `(I)^2` keeps it
    return _LONE_I_RE.sub(lambda m: "(I)" if text.startswith("^", m.end()) else "I", text)


# -- plain numbers ---------------------------------------------------------------------

_INT = r"(?:[1-9]\d{0,2}(?:,\d{3})+|[1-9]\d{0,2}(?: \d{3})+|\d+)"
_DEC = rf"(?:{_INT}(?:\.\d*)?|\.\d+)"
_SIGN = r"[-+]?"
_NUMBER_RE = re.compile(rf"({_SIGN})({_DEC})")
_SCI_E_RE = re.compile(rf"({_SIGN})({_DEC})[eE]([-+]?\d+)")
_SCI_TIMES_RE = re.compile(
    rf"({_SIGN})({_DEC})(?:\\times|\\cdot|\*|×|x)10\^(?:\{{([-+]?\d+)\}}|([-+]?\d))"
)
_FRAC_RE = re.compile(rf"({_SIGN})\\frac\{{({_DEC})\}}\{{({_DEC})\}}")
_FRAC_SHORT_RE = re.compile(rf"({_SIGN})\\frac(\d)(\d)")
_SLASH_RE = re.compile(rf"({_SIGN})\(?({_DEC})\)?/\(?({_DEC})\)?")
# mixed numbers: "4 4/9" and "2\\frac{1}{4}" (a proper fraction after a whole number)
_MIXED_RE = re.compile(rf"({_SIGN})({_INT}) (\d+)/(\d+)")
_MIXED_FRAC_RE = re.compile(rf"({_SIGN})(\d+)\\frac\{{(\d+)\}}\{{(\d+)\}}")
# 0.\overline{6}, 0.1\overline{6}, 1.\overline{09}, 0.\dot{3}
_REPEATING_RE = re.compile(r"([-+]?)(\d*)\.(\d*)\\(?:overline|dot)\s*(?:\{(\d{1,50})\}|(\d))")
# 0.333..., 0.1666\ldots, 0.1212\dots: a decimal whose last digits repeat, then an ellipsis
_ELLIPSIS_RE = re.compile(r"([-+]?\d*)\.(\d{2,60})(?:\.\.\.|\\[lc]?dots|…)")


def _repeating_spelled(match: re.Match[str]) -> str | None:
    """`0.1666...` -> `0.1\\overline{6}`: the shortest block repeated at the end (at least
    three times for one digit, twice for longer blocks); None when no block repeats."""
    head, digits = match.group(1), match.group(2)
    for size in range(1, 7):
        block = digits[-size:]
        repeats = 3 if size == 1 else 2
        if len(digits) >= size * repeats and digits.endswith(block * repeats):
            fixed = digits[: len(digits) - size * repeats]
            while fixed.endswith(block):
                fixed = fixed[: -size]
            return f"{head}.{fixed}\\overline{{{block}}}"
    return None


_PERCENT_RE = re.compile(r"(.*?)\s*(?:%|percent|pct|percentage)$")
# Words that follow a number as a unit; math words are not units ("2 pi" is not 2).
_UNIT_RE = re.compile(
    r"(.*?\d)(?: ([a-zA-Z]{1,2}\^\d)|((?:m|cm|mm|km|ft|in)[²³])| ([a-zA-Z]{2,}(?: [a-zA-Z]{2,})*))"
)
_NOT_UNITS = frozenset(
    "pi sqrt sin cos tan cot sec csc log ln exp mod pmod and or to times cdot infty inf e i "
    "x y z n k".split()
)
_CURRENCY_RE = re.compile(r"^(?:\$|USD|US\$|€|£|¥|Rs\.?)\s*|\s*(?:\$|€|£|¥)$")


_MAX_NUMBER_CHARS = 200


@dataclass(frozen=True)
class PlainNumber:
    value: Fraction
    percent: bool  # written with %: 50% may mean 50 or 0.5
    decimal: bool  # written with a decimal point or an exponent: compare after rounding


def _decimal(text: str) -> Fraction:
    return Fraction(text.replace(",", "").replace(" ", ""))


def plain_number(text: str) -> PlainNumber | None:
    """The exact value of a plain number (see module docstring); None for anything else."""
    if len(text) > _MAX_NUMBER_CHARS:
        return None
    text = _CURRENCY_RE.sub("", normalize(text))
    percent = False
    match = _PERCENT_RE.fullmatch(text)
    if match:
        text, percent = match.group(1).strip(), True
    unit = _UNIT_RE.fullmatch(text)
    if unit:
        words = next(g for g in unit.groups()[1:] if g is not None)
        if not set(words.lower().replace("^", " ").split()) & _NOT_UNITS:
            text = unit.group(1)
    value = _number_value(text)
    if value is None:
        return None
    number, decimal = value
    return PlainNumber(number, percent, decimal)


def _number_value(text: str) -> tuple[Fraction, bool] | None:
    if match := _ELLIPSIS_RE.fullmatch(text):
        text = _repeating_spelled(match) or text
    if match := _REPEATING_RE.fullmatch(text):
        sign = -1 if match.group(1) == "-" else 1
        whole, fixed = match.group(2) or "0", match.group(3)
        repeating = match.group(4) or match.group(5)
        period = Fraction(int(repeating), 10 ** len(repeating) - 1)
        value = int(whole) + (int(fixed or "0") + period) / Fraction(10) ** len(fixed)
        return sign * value, False  # exact: 0.\overline{6} is 2/3, not 0.666667
    if match := _NUMBER_RE.fullmatch(text):
        sign = -1 if match.group(1) == "-" else 1
        return sign * _decimal(match.group(2)), "." in match.group(2)
    if match := _SCI_E_RE.fullmatch(text):
        sign = -1 if match.group(1) == "-" else 1
        exponent = int(match.group(3))
        if abs(exponent) > 400:
            return None
        return sign * _decimal(match.group(2)) * Fraction(10) ** exponent, True
    if match := _SCI_TIMES_RE.fullmatch(text):
        sign = -1 if match.group(1) == "-" else 1
        exponent = int(match.group(3) or match.group(4))
        if abs(exponent) > 400:
            return None
        return sign * _decimal(match.group(2)) * Fraction(10) ** exponent, True
    for pattern in (_MIXED_RE, _MIXED_FRAC_RE):
        if match := pattern.fullmatch(text):
            whole, numerator, denominator = (_decimal(match.group(i)) for i in (2, 3, 4))
            if pattern is _MIXED_FRAC_RE and not 0 < numerator < denominator:
                return None  # 2\frac{5}{3} is a product, not a mixed number
            if denominator == 0:
                return None
            sign = -1 if match.group(1) == "-" else 1
            return sign * (whole + numerator / denominator), False
    for pattern in (_FRAC_RE, _FRAC_SHORT_RE, _SLASH_RE):
        if match := pattern.fullmatch(text):
            sign = -1 if match.group(1) == "-" else 1
            numerator, denominator = _decimal(match.group(2)), _decimal(match.group(3))
            if denominator == 0:
                return None
            decimal = "." in match.group(2) or "." in match.group(3)
            return sign * numerator / denominator, decimal
    return None


_DECIMAL_COMMA_RE = re.compile(r"([-+]?)(\d+),(\d+)")


def decimal_comma_number(text: str) -> PlainNumber | None:
    """`1,22` or `1000,99` read with a decimal comma (never `1,000`, which is a thousand).
    Only meant for comparison with a number written with a decimal point: on its own,
    `1,5` is more likely a list."""
    match = _DECIMAL_COMMA_RE.fullmatch(text)
    if match is None:
        return None
    whole, fraction = match.group(2), match.group(3)
    if len(fraction) == 3 and not whole.startswith("0") and len(whole) <= 3:
        return None
    sign = -1 if match.group(1) == "-" else 1
    return PlainNumber(sign * Fraction(f"{whole}.{fraction}"), False, True)


def numbers_equal(gold: PlainNumber, pred: PlainNumber, float_rounding: int) -> bool:
    """Equal as written, or after rounding to `float_rounding` decimals when either side is
    a decimal (as Math-Verify does: 1/3 == 0.333333, 1/3 != 0.333). A percent sign makes
    both readings count: 50% is 0.5 and 50."""
    golds = {gold.value, gold.value / 100} if gold.percent else {gold.value}
    preds = {pred.value, pred.value / 100} if pred.percent else {pred.value}
    rounded = gold.decimal or pred.decimal
    for g in golds:
        for p in preds:
            if g == p or (rounded and round(g, float_rounding) == round(p, float_rounding)):
                return True
    return False


# -- equations -------------------------------------------------------------------------

_ASSIGNMENT_RE = re.compile(r"([a-zA-Z](?:_\{?\w+\}?)?|\\[a-zA-Z]+)=([^=<>]+)")


def assignment_value(text: str) -> str | None:
    """`x=2` -> `2`: the value of a one-variable assignment (normalized text), else None."""
    match = _ASSIGNMENT_RE.fullmatch(text)
    return match.group(2) if match else None


# -- option letters --------------------------------------------------------------------

_GOLD_LETTER_RE = re.compile(r"\(?([A-Z])\)?\.?")
_OPTION_LABEL_RE = re.compile(r"\(?([A-H])[).:] ?(.+)", re.DOTALL)
_MARKUP_RE = re.compile(r"\*\*|__|\\mathrm\{([^{}]*)\}|\\mathbf\{([^{}]*)\}")


def gold_letter(gold: str) -> str | None:
    """The option letter a reference names (`A`, `(B)`, `C.`, `\\text{D}`), else None."""
    text = _MARKUP_RE.sub(lambda m: m.group(1) or m.group(2) or "", normalize(gold)).strip()
    match = _GOLD_LETTER_RE.fullmatch(text)
    return match.group(1) if match else None


def option_label(answer: str) -> tuple[str, str] | None:
    """`B. 42` -> (`B`, `42`): an option label and the text after it, else None."""
    match = _OPTION_LABEL_RE.fullmatch(answer)
    return (match.group(1), match.group(2).strip()) if match else None
