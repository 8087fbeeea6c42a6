"""The calculator evaluates arithmetic on a parsed tree and refuses everything else."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from shared.errors import ToolError
from shared.tools.calculator import (
    CALCULATOR,
    MAX_EXPRESSION_CHARS,
    CalculatorInput,
    evaluate,
)


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


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("round(1, -10**7)", "ndigits"),
        ("round(1, -10**9)", "ndigits"),
        ("round(1.5, 0.5)", "ndigits must be an integer"),
        ("((9**999)**999)**999", "exponent 999 is too large"),
        ("2 ** 4096", "larger than the limit of 4096 bits"),
        ("(2 ** 4000) * (2 ** 100)", "product would have"),
        ("(-8) ** 0.5", "complex result"),
        ("(-1) ** (1/3)", "complex result"),
        ("1e308 * 10", "not a finite number"),
        ("1e309", "not a finite number"),
        ("exp(1000)", "cannot evaluate"),
        ("sqrt(-1)", "cannot evaluate"),
        ("10 ** 1000 / 3", "cannot evaluate"),
        ("min()", "cannot evaluate"),
        ("-" * 60 + "1", "nested too deeply"),
    ],
)
def test_sizes_are_bounded_before_computing(expression: str, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ToolError, match=message):
        evaluate(expression)
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 ** 4095", 2 ** 4095),
        ("(-2) ** 4095", -(2 ** 4095)),
        ("2 ** 2000 * 2 ** 2000", 2 ** 4000),
        ("round(2 ** 4000, -1234)", 0),
        ("round(123.456, 2)", 123.46),
        ("2 ** -5000", 0.0),
        ("1 ** (2 ** 4000)", 1),
    ],
)
def test_values_within_the_bounds_are_computed(expression: str, value: float) -> None:
    assert evaluate(expression) == value


def test_the_argument_length_is_bounded() -> None:
    with pytest.raises(ValidationError):
        CalculatorInput.model_validate({"expression": "1+" * MAX_EXPRESSION_CHARS + "1"})
    with pytest.raises(ValidationError):
        CalculatorInput.model_validate({"expression": ""})


def test_the_calculator_is_isolated() -> None:
    assert CALCULATOR.isolated
