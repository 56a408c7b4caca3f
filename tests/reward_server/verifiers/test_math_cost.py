"""Which math answers are refused as too costly to evaluate (before sympy sees them)."""

from __future__ import annotations

import pytest

from reward_server.verifiers.math_cost import costly_operation


@pytest.mark.parametrize(
    "answer,refused",
    [
        # -- towers and huge factorials: refused --
        ("9^{9^{9^{9}}}", True),
        ("10^{10^{10}}", True),
        ("2^{2^{100}}", True),
        ("(10^{100})!", True),
        ("1000000!", True),
        ("\\sum_{k=1}^{10^{9}} k^{k}", True),  # 10^9 terms
        # -- ordinary answers: evaluated --
        ("2^{10}", False),
        ("2^{2^{3}}", False),  # 256
        ("2^{3!}", False),
        ("10000!", False),
        ("5!", False),
        ("e^{x^2}", False),  # letters: left to sympy and its time limit
        ("x^{2^{3}}", False),
        ("\\frac{1}{2}", False),
        ("", False),
    ],
)
def test_costly_operation(answer: str, refused: bool) -> None:
    assert (costly_operation(answer) is not None) == refused
