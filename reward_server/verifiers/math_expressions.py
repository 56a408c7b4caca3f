"""`math-expressions`: is the model's answer mathematically equivalent to the reference?

Extraction (`extract`, server process, string work only): the recipe's answer block (the
last `<answer>...</answer>`; with `strict_tags=False` also `\\boxed{}`, "Answer: X" and the
last line), then the part of it that states the result (`math_normalize.final_answer`:
the last `\\boxed{}`, the text after "the answer is", the last `$...$` of a sentence),
normalized to one spelling. That text is the verdict-cache key.

Comparison (`compare`, worker process), against each acceptable reference (a list gives
several; `\\boxed{}` around a reference is dropped); the first success wins:
1. A letter reference (`A`, `(B)`) is a multiple-choice gold, as ViRL39K routes them: the
   answer must name that letter (read as the `multiple-choice` verifier reads it), or with
   `choices` state that option's text (compared as math).
2. Identical normalized text.
3. Plain numbers on both sides: exact rational comparison (fractions, decimals, thousands
   separators, percent, scientific notation, units dropped); decimals are rounded to
   `float_rounding` places, as Math-Verify does. No sympy.
4. A one-variable assignment (`x = 2`) against a bare value compares the value, whichever
   side it is on (Math-Verify unwraps only some of these, depending on which is the gold).
5. Math-Verify (sympy, via latex2sympy2_extended): both sides are wrapped in `\\boxed{}`
   so bare LaTeX is parsed as LaTeX, not as "the first number in it" (the recipe's grader
   accepts `2` for `2\\pi` that way); a sentence goes to Math-Verify's own extraction.
   `verify` runs with `allow_set_relation_comp`, so `x \\in [-2,7]` and `-2 \\le x \\le 7`
   match whichever side is the gold. Before it, a numeric probe (free symbols set to fixed
   irrational-ish values) rejects pairs whose values differ by more than 0.1%: most wrong
   answers, without sympy's slow `simplify`. After it, a "yes" for two exact numbers
   whose 30-digit values differ is overruled: Math-Verify's `evalf(chop=True)` calls
   `1/2004!` and `1/2006!` equal.

Statuses: `ok` (score 1.0 or 0.0); `rejected` for an answer longer than
`max_answer_chars`, nested deeper than `max_nesting`, or too costly to evaluate (a power
tower such as `9^{9^{9^{9}}}`, the factorial of a power: `math_cost.costly_operation`),
unless it is literally a gold; `error` for an empty reference; `timeout` when
Math-Verify's own `signal.alarm` limit (`sympy_timeout_s`, per parse or verify call)
fires (the engine then retries it on a CPU budget and may turn it into `rejected`). Those alarms
work because `compare` runs on a worker's main thread; the engine's kill of the worker is
the outer bound for computations that never return to the interpreter. Parsed sympy
objects never leave this module and are never logged or turned into text: a hostile
expression can hang `str()`.
"""

from __future__ import annotations

import cmath
import logging
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from reward_server.types import ItemContext, Reference, Verdict
from reward_server.verifiers import latex_parsing, multiple_choice
from reward_server.verifiers import math_normalize as mn
from reward_server.verifiers.base import BaseOptions, extract_tagged, golds_of, option
from reward_server.verifiers.math_cost import costly_operation


@dataclass(frozen=True)
class Options(BaseOptions):
    float_rounding: int = option(
        6,
        "Decimal places kept when a decimal is compared (Math-Verify's float_rounding): "
        "1/3 equals 0.333333 but not 0.333.",
        ge=0, le=15,
    )
    sympy_timeout_s: int = option(
        3,
        "Whole seconds allowed to each Math-Verify parse or verify call (signal.alarm) "
        "before the item is reported as timeout.",
        ge=1, le=60,
    )
    max_answer_chars: int = option(
        2000, "Longer answers are not parsed: status rejected.", ge=1, le=100_000
    )
    max_nesting: int = option(
        40, "Deeper nesting of braces/brackets/parentheses is not parsed: status rejected.", ge=1,
        le=1000
    )


    def __post_init__(self) -> None:
        if not 0 <= self.float_rounding <= 15:
            raise ValueError(f"float_rounding={self.float_rounding}: use 0..15 decimal places")
        if self.sympy_timeout_s < 1:
            raise ValueError(f"sympy_timeout_s={self.sympy_timeout_s}: use 1 or more seconds "
                             "(0 would switch Math-Verify's time limit off)")
        if self.max_answer_chars < 1 or self.max_nesting < 1:
            raise ValueError("max_answer_chars and max_nesting must be 1 or more")


log = logging.getLogger(__name__)


class _SympyTimeout(Exception):
    """Math-Verify, or our own sympy check, ran out of its time limit."""


# -- extraction (server process) ---------------------------------------------------------


def extract(response: str, options: Options, context: ItemContext) -> str | None:
    block = extract_tagged(response, options, context)
    if block is None:
        return None
    answer = mn.final_answer(block)
    if len(answer) > options.max_answer_chars:
        return answer  # compare rejects it; normalizing it would only cost time here
    answer = mn.normalize(answer)
    return answer or None


# -- comparison (worker process) ---------------------------------------------------------


def compare(
    extracted: str, reference: Reference, options: Options, context: ItemContext
) -> Verdict:
    golds = _golds(reference)
    if not golds:
        return Verdict(0.0, status="error", message="the reference is empty")
    refusal = _too_big(extracted, options) or costly_operation(extracted)
    if refusal is not None and extracted not in golds:
        return Verdict(0.0, status="rejected", message=refusal)
    timed_out = False
    for gold in golds:
        try:
            how = _match(gold, extracted, options, context)
        except _SympyTimeout:
            timed_out = True
            continue
        if how is not None:
            return Verdict(1.0, {"equivalent": 1.0}, message=f"equivalent ({how})")
    if timed_out:
        return Verdict(0.0, status="timeout", message=(
            f"sympy comparison exceeded sympy_timeout_s={options.sympy_timeout_s}"))
    return Verdict(0.0, {"equivalent": 0.0}, message="not equivalent to the reference")


def _too_big(text: str, options: Options) -> str | None:
    """Why an answer is not handed to sympy (size and nesting bound parse work), or None."""
    if len(text) > options.max_answer_chars:
        return (f"answer of {len(text)} characters is longer than max_answer_chars="
                f"{options.max_answer_chars}; not parsed")
    depth = deepest = 0
    for char in text:
        if char in "{[(":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "}])":
            depth -= 1
    if deepest > options.max_nesting:
        return f"answer nests {deepest} levels deep, more than max_nesting={options.max_nesting}"
    return None


def _golds(reference: Reference) -> list[str]:
    values = golds_of(reference)
    golds = []
    for value in values:
        text = mn.normalize(mn.final_answer(str(value)))
        if text:
            golds.append(text)
    return golds


def _match(gold: str, pred: str, options: Options, context: ItemContext) -> str | None:
    """How `pred` matches `gold` ("numbers", "sympy", ...), or None when it does not."""
    letter = mn.gold_letter(gold)
    if letter is not None:
        return _match_choice(letter, pred, options, context)
    said = _option_letter(pred, context)
    labelled_gold = mn.option_label(gold)
    if labelled_gold is not None:  # "A. 5": the letter or the text
        if said is not None:
            return "option letter" if said == labelled_gold[0] else None
        gold = labelled_gold[1]
    if said is not None and context.choices:  # "B" for the gold "42" when B is "42"
        pred = mn.normalize(context.choices[ord(said) - ord("A")])
    how = equivalent(gold, pred, options)
    labelled = mn.option_label(pred)
    if how is None and labelled:  # "B. 42" for the gold 42
        how = equivalent(gold, labelled[1], options)
    return how


_LABEL_GLUE_RE = re.compile(r"^(\(?[A-Za-z][).:])(?=\S)")


def _option_letter(pred: str, context: ItemContext) -> str | None:
    """The option letter an answer names, by the `multiple-choice` verifier's reading
    (`B`, `(B)`, `b) cat`, `**B**`, "The answer is B"; hedges name none); None when it
    names none, or one outside the given `choices`."""
    # normalization joined "b) cat" into "b)cat"; the letter reader wants the space back
    said = multiple_choice.extract_letter(
        _LABEL_GLUE_RE.sub(r"\1 ", pred), context.choices, option_text=False
    )
    if len(said) != 1 or not "A" <= said <= "Z":
        return None
    if context.choices and ord(said) - ord("A") >= len(context.choices):
        return None
    return said


def _match_choice(letter: str, pred: str, options: Options, context: ItemContext) -> str | None:
    """A letter gold: the answer names the letter, or states the option's text."""
    said = _option_letter(pred, context)
    if said is not None:
        return "option letter" if said == letter else None
    index = ord(letter) - ord("A")
    if context.choices and index < len(context.choices):
        how = equivalent(mn.normalize(context.choices[index]), pred, options)
        return None if how is None else f"option text, {how}"
    return None


def equivalent(gold: str, pred: str, options: Options) -> str | None:
    """How two normalized answers are equivalent, or None (see module docstring)."""
    if gold == pred:
        return "same text"
    gold_number, pred_number = mn.plain_number(gold), mn.plain_number(pred)
    if gold_number is not None and pred_number is not None:
        if mn.numbers_equal(gold_number, pred_number, options.float_rounding):
            return "numbers"
        return None
    if (gold_number is None) != (pred_number is None):
        # "1,22" against "1.22": a decimal comma, when the other side has a decimal point
        written = gold_number or pred_number
        comma = mn.decimal_comma_number(gold if gold_number is None else pred)
        if written is not None and written.decimal and comma is not None:
            return "numbers" if mn.numbers_equal(comma, written, options.float_rounding) else None
    gold_value, pred_value = mn.assignment_value(gold), mn.assignment_value(pred)
    if (gold_value is None) != (pred_value is None):
        left, right = (gold_value or gold), (pred_value or pred)
        if left == right:
            return "assignment"
        left_number, right_number = mn.plain_number(left), mn.plain_number(right)
        if left_number is not None and right_number is not None:
            return "assignment" if mn.numbers_equal(
                left_number, right_number, options.float_rounding) else None
    return "sympy" if _sympy_equivalent(gold, pred, options) else None


# -- the sympy stage ---------------------------------------------------------------------

# Answer shapes a worker parses as it starts (`warm_up`): ANTLR builds its prediction DFA
# as it meets new inputs, so a cold parser pays several times over for its first
# fractions, intervals, matrices, relations. These are typical answers, not test data.
_WARM_UP_ANSWERS = (
    "42", "-3.5", "\\frac{3}{4}", "\\frac{\\sqrt{3}}{2}", "2\\sqrt{5}", "3\\pi",
    "\\frac{\\pi}{6}", "x=2", "y=2x+1", "x^2+2x+1", "(x+1)^2", "2\\sin x\\cos x",
    "\\tan^2\\theta+1", "e^{2x}", "\\log_2 8", "\\ln(3)", "n!", "\\binom{5}{2}", "a_n=2^n",
    "f(x)=3x-1", "10\\%", "45^\\circ", "(1,2)", "[0,1)", "(-\\infty,3]\\cup[5,\\infty)",
    "\\{1,2,3\\}", "(3,-2,7)", "x\\in[-2,7]", "-1<x\\le4", "x\\geq 3", "a=1,b=2",
    "x=1 \\text{ or } x=-1", "\\emptyset", "\\infty", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
    "\\begin{bmatrix}1\\\\0\\end{bmatrix}", "\\frac{x^2}{4}+\\frac{y^2}{3}=1", "\\sqrt[3]{2}",
    "|x-1|", "\\overline{AB}", "1+2i", "\\pm\\sqrt{2}", "\\frac{1}{2}\\cdot 3\\times4",
    "5\\text{ cm}", "1.5\\times10^{3}", "\\mathbb{R}", "\\angle ABC=30^\\circ", "p,q",
    "204_5", "\\cos(2\\alpha)", "\\sum_{k=1}^{n}k", "\\int_0^1 x\\,dx", "3:4",
)


def warm_up() -> None:
    """Run at a worker's start: import Math-Verify and sympy, and warm the LaTeX parser on
    typical answer shapes (the engine calls this before the worker takes items)."""
    for text in _WARM_UP_ANSWERS:
        try:
            equivalent(mn.normalize(text), "2\\pi", Options())
        except _SympyTimeout:
            continue  # a loaded machine: what was parsed so far is warm all the same
    _parse.cache_clear()  # what stays warm is the parser, not these answers




def _alarm_seconds(options: Options) -> int | None:
    """Math-Verify's per-call limit: signal.alarm works on the main thread only; elsewhere
    (a caller's thread pool) it would raise, so the caller's own bound has to do."""
    on_main = threading.current_thread() is threading.main_thread()
    return options.sympy_timeout_s if on_main else None


@lru_cache(maxsize=4096)
def _parse(text: str, timeout_s: int | None) -> tuple[Any, ...]:
    """Math-Verify's parse of one answer: bare LaTeX is boxed so it is read as LaTeX;
    a sentence goes to Math-Verify's own extraction (anchors, last number). Cached per
    worker: a GRPO group compares many answers with one gold."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse
    from math_verify.errors import TimeoutException

    latex_parsing.enable()  # same trees, a fraction of ANTLR's full-LL cost
    prose = mn.looks_like_prose(text)
    candidate = text if prose else "\\boxed{" + text + "}"
    try:
        return tuple(parse(
            candidate,
            [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()],
            fallback_mode="no_fallback",
            parsing_timeout=timeout_s,
            raise_on_error=True,
        ))
    except TimeoutException as exc:
        raise _SympyTimeout from exc
    except Exception as exc:  # noqa: BLE001 - unparseable output is a wrong answer, not a fault
        log.debug("Math-Verify could not parse an answer: %s: %s", type(exc).__name__, exc)
        return ()


def _sympy_equivalent(gold: str, pred: str, options: Options) -> bool:
    from math_verify import verify
    from math_verify.errors import TimeoutException

    limit = _alarm_seconds(options)
    gold_parsed = _parse(gold, limit)
    pred_parsed = _parse(pred, limit) if gold_parsed else ()
    for gold_expr in gold_parsed:
        for pred_expr in pred_parsed:
            if _clearly_different(gold_expr, pred_expr):
                continue  # the common case in a GRPO group, and simplify() is the slow part
            try:
                # allow_set_relation_comp: "x in [-2, 7]" and "-2 <= x <= 7" match whichever
                # side is the gold (by default only a set-valued prediction is converted)
                same = verify(gold_expr, pred_expr, float_rounding=options.float_rounding,
                              allow_set_relation_comp=True,
                              timeout_seconds=limit, raise_on_error=True)
            except TimeoutException as exc:
                raise _SympyTimeout from exc
            except Exception as exc:  # noqa: BLE001 - sympy failing on odd input: "not shown equal"
                log.debug("Math-Verify could not compare: %s: %s", type(exc).__name__, exc)
                same = False
            if same and not _exact_values_differ(gold_expr, pred_expr, options):
                return True
    return False


# Values given to free symbols when two expressions are probed numerically: irrational-ish,
# distinct, away from poles of the usual functions.
_PROBES = (0.5772156649, 1.3247179572, 0.7390851332, 1.6180339887, 0.3183098862,
           1.2020569032, 0.8346268417, 1.4142135624)


def _clearly_different(first: Any, second: Any) -> bool:
    """Two expressions whose values differ by more than 0.1% at a probe point: no
    rounding or simplification can make them equal (percentages, relations, sets and
    matrices are left to Math-Verify)."""
    from sympy import Expr, UnevaluatedExpr

    if not (isinstance(first, Expr) and isinstance(second, Expr)):
        return False
    if first.has(UnevaluatedExpr) or second.has(UnevaluatedExpr):
        return False
    try:
        symbols = sorted(first.free_symbols | second.free_symbols, key=lambda s: s.name)
        if len(symbols) > len(_PROBES):
            return False
        point = dict(zip(symbols, _PROBES, strict=False))
        with _time_limit(1):
            a = complex(first.evalf(15, subs=point))
            b = complex(second.evalf(15, subs=point))
    except _SympyTimeout:
        return False
    except Exception:  # noqa: BLE001 - a probe that cannot evaluate decides nothing
        return False
    if not (cmath.isfinite(a) and cmath.isfinite(b)):
        return False
    return abs(a - b) > 1e-3 * max(1.0, abs(a), abs(b))


def _exact_values_differ(first: Any, second: Any, options: Options) -> bool:
    """Two exact, symbol-free numbers whose 30-digit values differ (relative 1e-20)."""
    from sympy import Expr, Float, UnevaluatedExpr

    exact = all(
        isinstance(e, Expr) and not e.free_symbols and not e.has(Float, UnevaluatedExpr)
        for e in (first, second)
    )
    if not exact:
        return False
    with _time_limit(options.sympy_timeout_s):
        try:
            a, b = first.evalf(30), second.evalf(30)
            scale = max(abs(a), abs(b))
            if not (scale.is_number and scale.is_finite) or scale == 0:
                return False
            return bool(abs(a - b) / scale > 1e-20)
        except Exception:  # noqa: BLE001 - what cannot be evaluated cannot overrule
            return False


@contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    """A signal alarm around our own sympy calls, as Math-Verify does around its own (main
    thread only; elsewhere the engine's hard kill is the only bound)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise _SympyTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
