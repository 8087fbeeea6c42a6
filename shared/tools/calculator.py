"""``calculator``: arithmetic on a parsed syntax tree. Nothing is ever passed to eval."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from shared.errors import ToolError
from shared.tools.base import Tool, ToolContext

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "sqrt": math.sqrt,
    "log": math.log,
    "exp": math.exp,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPRESSION_CHARS = 1_000
MAX_POWER_EXPONENT = 1_000
MAX_DEPTH = 50


class CalculatorInput(BaseModel):
    """Arguments of ``calculator``.

    Attributes:
        expression: Arithmetic over numbers with ``+ - * / // % **``, parentheses,
            ``abs min max round sqrt log exp``, and the constants ``pi`` and ``e``
            (at most 1,000 characters).
    """

    expression: str = Field(min_length=1, max_length=MAX_EXPRESSION_CHARS)


def _evaluate(node: ast.AST, depth: int = 0) -> float | int:
    if depth > MAX_DEPTH:
        raise ToolError("expression is nested too deeply")
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, depth + 1)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, depth + 1), _evaluate(node.right, depth + 1)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_POWER_EXPONENT:
            raise ToolError(f"exponent {right} is larger than {MAX_POWER_EXPONENT}")
        value = _BINARY[type(node.op)](left, right)
        if isinstance(value, complex):  # (-8) ** 0.5: Python answers with a complex number
            raise ToolError(f"complex result: {ast.unparse(node)!r} has no real value")
        return value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand, depth + 1))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return _FUNCTIONS[node.func.id](*(_evaluate(arg, depth + 1) for arg in node.args))
    shown = ast.unparse(node) if isinstance(node, ast.expr) else type(node).__name__
    raise ToolError(f"unsupported element in expression: {shown!r}")


def evaluate(expression: str) -> float | int:
    """Evaluate an arithmetic expression safely.

    Args:
        expression: See :class:`CalculatorInput`.

    Returns:
        The value (int or float).

    Raises:
        ToolError: The expression does not parse, uses anything outside the allowed
            grammar, divides by zero, overflows, or has a complex result.
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"expression does not parse: {exc.msg}: {expression!r}") from None
    try:
        value = _evaluate(tree)
    except ZeroDivisionError:
        raise ToolError(f"division by zero in {expression!r}") from None
    except (OverflowError, ValueError, TypeError) as exc:
        raise ToolError(f"cannot evaluate {expression!r}: {exc}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError(f"{expression!r} is not a finite number")
    return value


def _run(args: CalculatorInput, ctx: ToolContext) -> dict[str, Any]:
    return {"expression": args.expression, "value": evaluate(args.expression)}


CALCULATOR = Tool(
    name="calculator",
    description=(
        "Evaluate an arithmetic expression. Input: {\"expression\": str}. "
        "Output: {\"expression\": str, \"value\": number}."
    ),
    input_model=CalculatorInput,
    run=_run,
)
