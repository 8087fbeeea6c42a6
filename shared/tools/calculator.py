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
MAX_DEPTH = 50
MAX_INT_BITS = 4_096
"""Largest integer operand or result, in bits (about 1,233 decimal digits)."""
MAX_ROUND_DIGITS = math.ceil(MAX_INT_BITS * math.log10(2)) + 1
"""``round``'s ``ndigits`` must lie within +/- this: any integer within the bound and any
float (at most about 1e308, at least about 5e-324) is fully covered by it."""


class CalculatorInput(BaseModel):
    """Arguments of ``calculator``.

    Attributes:
        expression: Arithmetic over numbers with ``+ - * / // % **``, parentheses,
            ``abs min max round sqrt log exp``, and the constants ``pi`` and ``e``
            (at most 1,000 characters). Integers may have at most ``MAX_INT_BITS``
            bits, operands and results alike; floats must stay finite; complex
            results are refused.
    """

    expression: str = Field(min_length=1, max_length=MAX_EXPRESSION_CHARS)


def _check(value: Any) -> float | int:
    """Return ``value`` if it is a real number within the bounds, else raise ToolError."""
    if isinstance(value, complex):
        raise ToolError("complex result")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("result is not a finite number (overflow or NaN)")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError(f"integer of {value.bit_length()} bits is larger than the limit "
                        f"of {MAX_INT_BITS} bits")
    return value


def _short(value: int) -> str:
    """``value`` for an error message: in full up to 64 bits, else its size."""
    return str(value) if value.bit_length() <= 64 else f"<{value.bit_length()}-bit integer>"


def _refuse_large_results(op: ast.operator, left: float | int, right: float | int) -> None:
    """Refuse, before computing, an integer operation whose result would exceed the bound.

    Only ``**`` and ``*`` on integers can grow a result past the bound from operands
    within it (``+`` and ``-`` add one bit at most; the rest shrink or go to float).
    """
    if not (isinstance(left, int) and isinstance(right, int)):
        return
    if isinstance(op, ast.Pow) and right > 0 and abs(left) > 1:
        bits = right * math.log2(abs(left))
        if bits > MAX_INT_BITS:
            raise ToolError(f"exponent {_short(right)} is too large: {_short(left)} ** "
                            f"{_short(right)} would have about {bits:.3g} bits, more than "
                            f"the limit of {MAX_INT_BITS}")
    if isinstance(op, ast.Mult):
        bits = left.bit_length() + right.bit_length()  # the product has bits or bits - 1
        if bits - 1 > MAX_INT_BITS:
            raise ToolError(f"product would have at least {bits - 1} bits, more than the "
                            f"limit of {MAX_INT_BITS}")


def _call(name: str, args: list[float | int]) -> float | int:
    if name == "round" and len(args) == 2:
        ndigits = args[1]
        if not isinstance(ndigits, int):
            raise ToolError("round's ndigits must be an integer")
        if abs(ndigits) > MAX_ROUND_DIGITS:
            raise ToolError(f"round's ndigits {ndigits} is outside "
                            f"[-{MAX_ROUND_DIGITS}, {MAX_ROUND_DIGITS}]")
    return _FUNCTIONS[name](*args)


def _evaluate(node: ast.AST, depth: int = 0) -> float | int:
    if depth > MAX_DEPTH:
        raise ToolError("expression is nested too deeply")
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, depth + 1)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _check(node.value)
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, depth + 1), _evaluate(node.right, depth + 1)
        _refuse_large_results(node.op, left, right)
        return _check(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(_UNARY[type(node.op)](_evaluate(node.operand, depth + 1)))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        args = [_evaluate(arg, depth + 1) for arg in node.args]
        return _check(_call(node.func.id, args))
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
            grammar, divides by zero, overflows, has an integer operand or result of
            more than ``MAX_INT_BITS`` bits (refused before computing it), calls
            ``round`` with ``ndigits`` beyond ``MAX_ROUND_DIGITS``, or has a complex
            result ("complex result").
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"expression does not parse: {exc.msg}: {expression!r}") from None
    try:
        value = _evaluate(tree)
    except ZeroDivisionError:
        raise ToolError(f"division by zero in {expression!r}") from None
    except (OverflowError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        raise ToolError(f"cannot evaluate {expression!r}: {exc}") from None
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
    isolated=True,
)
