"""Two-stage LaTeX parsing gives latex2sympy's own trees, and its own errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy
from sympy import srepr

from reward_server.extraction import last_tag_content
from reward_server.verifiers import latex_parsing
from reward_server.verifiers import math_normalize as mn

CORPUS = (Path(__file__).resolve().parents[3] / "reward_server" / "known_answers"
          / "math_equivalence.jsonl")


def _corpus_texts() -> list[str]:
    texts: set[str] = set()
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        answer = last_tag_content(row["response"], "answer") or row["response"]
        for value in (row["answer"], answer):
            text = mn.normalize(mn.final_answer(str(value)))
            if text and len(text) < 300:
                texts.add(text)
    return sorted(texts)


def _outcome(parse: object, text: str) -> str:
    try:
        return srepr(parse(text))  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001 - the error's kind is part of the outcome
        return f"raises {type(exc).__name__}"


def test_two_stage_parses_equal_full_ll_parses_on_the_corpus() -> None:
    assert latex_parsing.enable()
    texts = _corpus_texts()[::2]
    assert len(texts) > 200
    two_stage = [_outcome(_Latex2Sympy().parse, t) for t in texts]
    full_ll = [_outcome(latex_parsing.parse_full_ll, t) for t in texts]
    differing = [t for t, a, b in zip(texts, two_stage, full_ll, strict=True) if a != b]
    assert differing == []
    assert sum(o.startswith("raises") for o in two_stage) < len(texts) // 4


@pytest.mark.parametrize("text", [
    "\\frac{1}{",        # unclosed brace: a syntax error in both modes
    "x = = 2",           # two relations in a row
    "(1, 2",             # unclosed interval
])
def test_syntax_errors_keep_the_library_error(text: str) -> None:
    latex_parsing.enable()
    with pytest.raises(Exception) as two_stage:
        _Latex2Sympy().parse(text)
    assert not isinstance(two_stage.value, latex_parsing.SllSyntaxError)
    with pytest.raises(Exception) as full_ll:
        latex_parsing.parse_full_ll(text)
    assert str(two_stage.value) == str(full_ll.value)


def test_enable_is_idempotent() -> None:
    assert latex_parsing.enable()
    installed = _Latex2Sympy.parse
    assert latex_parsing.enable()
    assert _Latex2Sympy.parse is installed and installed.__name__ == "parse_two_stage"
