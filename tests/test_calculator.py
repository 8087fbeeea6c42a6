"""The calculator evaluates arithmetic on a parsed tree and refuses everything else."""

from __future__ import annotations

import pytest

from shared.errors import ToolError
from shared.tools.calculator import evaluate


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("10994 * (1 - 0.20)", 8795.2),
        ("2 ** 10", 1024),
        ("-3 + 7 // 2", 0),
        ("max(1, 5, 3) / 2", 2.5),
        ("round(sqrt(2) * 100)", 141),
    ],
)
def test_arithmetic(expression: str, value: float) -> None:
    assert evaluate(expression) == pytest.approx(value)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('true')", "unsupported element"),
        ("(1).__class__", "unsupported element"),
        ("open('x')", "unsupported element"),
        ("[1, 2]", "unsupported element"),
        ("1 / 0", "division by zero"),
        ("9 ** 9 ** 9", "exponent"),
        ("1 +", "does not parse"),
        ("'a' * 3", "unsupported element"),
        ("(-8) ** 0.5", "complex result"),
        ("sqrt(2) + (-1) ** 0.5", "complex result"),
    ],
)
def test_everything_else_is_refused_with_a_reason(expression: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        evaluate(expression)
