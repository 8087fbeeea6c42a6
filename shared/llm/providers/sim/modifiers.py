"""Changes the ``sim`` planner reads in quantitative goals: "20% shallower", "3.5 times
larger", "by half", "by the same fraction", each turned into a calculator expression."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UP = re.compile(
    r"\b(?:increas\w*|grow\w*|grew|grown|expand\w*|extend\w*|lengthen\w*|taller|higher|"
    r"deeper|deepen\w*|faster|speedier|quicker|larger|bigger|longer|greater|more|ris(?:e|es|"
    r"ing|en)|rose|raise\w*|elevat\w*|enhanc\w*|enlarg\w*|magnif\w*|swell\w*|stretch\w*|"
    r"boost\w*|add\w*|augment\w*|gain\w*|heighten\w*|surg\w*|climb\w*|up)\b",
    re.IGNORECASE,
)
_DOWN = re.compile(
    r"\b(?:decreas\w*|reduc\w*|shrink\w*|shrank|shrunk\w*|shorten\w*|shorter|lower\w*|"
    r"shallower|slower|smaller|less|fewer|contract\w*|declin\w*|drop\w*|fall\w*|fell|los(?:e|"
    r"es|ing|t)|subtract\w*|cut\w*|diminish\w*|lessen\w*|narrow\w*|down)\b",
    re.IGNORECASE,
)
PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|per\s*cent\b|percent\b)", re.IGNORECASE)
_TIMES = re.compile(r"(\d+(?:\.\d+)?)\s*(?:times|x|-fold|fold)\b", re.IGNORECASE)
_MULTIPLE = re.compile(
    r"\b(?:(?P<two>doubl(?:e|es|ed|ing))|(?P<three>tripl(?:e|es|ed|ing)))\b"
    r"(?=\s+(?:in|its|their)\b)",
    re.IGNORECASE,
)
_HALF = re.compile(r"\b(?:by\s+half|halv(?:e|es|ed|ing))\b", re.IGNORECASE)
_SAME = re.compile(
    r"\bsame\s+(?:fraction|percentage|percent|amount|rate|proportion)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class Modifier:
    """A change applied to one entity's value: ``value * factor`` or ``value / divisor``."""

    op: str  # "*" or "/"
    amount: float
    text: str

    def expression(self, ref: str) -> str:
        """Calculator expression applying the change to ``ref`` ("$1.value")."""
        return f"{ref} {self.op} {self.text}"


def fmt(number: float) -> str:
    """``number`` as the planner writes it in an expression: shortest form (``%g``)."""
    return f"{number:g}"


def direction(clause: str, anchor: int) -> int | None:
    """+1 or -1 from the direction word nearest to ``anchor`` in ``clause``, else None."""
    best: tuple[int, int] | None = None
    for sign, pattern in ((1, _UP), (-1, _DOWN)):
        for match in pattern.finditer(clause):
            distance = abs(match.start() - anchor)
            if best is None or distance < best[0]:
                best = (distance, sign)
    return best[1] if best else None


def modifier_in(
    clause: str, last: tuple[float, str] | None, last_sign: int | None
) -> tuple[Modifier | None, tuple[float, str] | None, int | None]:
    """Find the change a clause describes.

    Args:
        clause: One clause of the goal.
        last: ``(amount, kind)`` of the previous change, for "by the same fraction".
        last_sign: Direction of the previous clause (+1 up, -1 down), inherited by a
            clause that states an amount without a direction ("the Statue of Unity by
            20%" after "elevating ... by 45%").

    Returns:
        ``(modifier or None, (amount, kind) or None, direction or None)``.
    """
    kind: str | None = None
    amount = 0.0
    anchor = 0
    if (match := PERCENT.search(clause)) is not None:
        kind, amount, anchor = "percent", float(match.group(1)), match.start()
    elif (match := _TIMES.search(clause)) is not None:
        kind, amount, anchor = "times", float(match.group(1)), match.start()
    elif (match := _MULTIPLE.search(clause)) is not None:
        amount = 2.0 if match.group("two") else 3.0
        return Modifier("*", amount, fmt(amount)), (amount, "times"), 1
    elif (match := _HALF.search(clause)) is not None:
        kind, amount, anchor = "percent", 50.0, match.start()
    elif (match := _SAME.search(clause)) is not None and last is not None:
        (amount, kind), anchor = last, match.start()
    if kind is None:
        return None, None, direction(clause, 0) or last_sign
    sign = direction(clause, anchor) or last_sign or 1
    if kind == "percent":
        fraction = amount / 100
        text = f"(1 + {fmt(fraction)})" if sign > 0 else f"(1 - {fmt(fraction)})"
        return Modifier("*", 1 + sign * fraction, text), (amount, kind), sign
    op = "/" if sign < 0 else "*"  # "4.5 times slower" divides, "3.5 times larger" multiplies
    return Modifier(op, amount, fmt(amount)), (amount, kind), sign
