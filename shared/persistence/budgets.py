"""Per-goal budgets of tokens and USD, enforced before every LLM call.

Before a call, its worst case (estimated input tokens plus its output cap, priced at
the model's rates) is reserved under the goal row lock against what the goal has spent
(its ``llm_calls``) and what calls in flight have reserved; a call that does not fit is
not made. After the call, the reservation is released in the same transaction that
records what the call really cost. Parallel steps of one goal therefore never overspend
between them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Reservation:
    """Worst case set aside for one LLM call: tokens and USD."""

    tokens: int
    cost_usd: float


@dataclass(frozen=True)
class BudgetCheck:
    """Outcome of :func:`reserve`.

    Attributes:
        granted: True if the reservation was made.
        spent_tokens: Tokens the goal's recorded calls used.
        spent_usd: USD the goal's recorded calls cost.
        reserved_tokens: Tokens held by calls in flight (before this one).
        reserved_usd: USD held by calls in flight (before this one).
        max_tokens: The goal's token budget (None: unlimited).
        max_cost_usd: The goal's USD budget (None: unlimited).
    """

    granted: bool
    spent_tokens: int
    spent_usd: float
    reserved_tokens: int
    reserved_usd: float
    max_tokens: int | None
    max_cost_usd: float | None

    def describe(self, reservation: Reservation) -> str:
        """Why the call does not fit, for the goal's ``budget_exceeded:`` reason."""
        parts = []
        if self.max_tokens is not None:
            left = self.max_tokens - self.spent_tokens - self.reserved_tokens
            parts.append(f"the call may use {reservation.tokens} tokens, {left} of "
                         f"{self.max_tokens} are left")
        if self.max_cost_usd is not None:
            left_usd = self.max_cost_usd - self.spent_usd - self.reserved_usd
            parts.append(f"it may cost ${reservation.cost_usd:.6f}, ${left_usd:.6f} of "
                         f"${self.max_cost_usd:.6f} are left")
        return "; ".join(parts) + (
            f" (spent so far: {self.spent_tokens} tokens, ${self.spent_usd:.6f})")


def reserve(connection: Connection, *, goal_id: uuid.UUID,
            reservation: Reservation) -> BudgetCheck:
    """Reserve ``reservation`` against the goal's budgets if it fits.

    Runs under the goal row lock (taken here), in the caller's transaction.
    """
    row = connection.execute(
        text(
            """
            SELECT g.max_tokens, g.max_cost_usd, g.reserved_tokens, g.reserved_usd,
                   coalesce((SELECT sum(c.input_tokens + c.output_tokens) FROM llm_calls c
                             WHERE c.goal_id = g.id), 0) AS spent_tokens,
                   coalesce((SELECT sum(c.cost_usd) FROM llm_calls c
                             WHERE c.goal_id = g.id), 0) AS spent_usd
            FROM goals g WHERE g.id = :id FOR UPDATE
            """
        ),
        {"id": goal_id},
    ).one()
    max_usd = float(row.max_cost_usd) if row.max_cost_usd is not None else None
    check = BudgetCheck(
        granted=True, spent_tokens=int(row.spent_tokens), spent_usd=float(row.spent_usd),
        reserved_tokens=int(row.reserved_tokens), reserved_usd=float(row.reserved_usd),
        max_tokens=row.max_tokens, max_cost_usd=max_usd,
    )
    over_tokens = row.max_tokens is not None and (
        check.spent_tokens + check.reserved_tokens + reservation.tokens > row.max_tokens)
    over_usd = max_usd is not None and (
        check.spent_usd + check.reserved_usd + reservation.cost_usd > max_usd)
    if over_tokens or over_usd:
        return BudgetCheck(**{**check.__dict__, "granted": False})
    connection.execute(
        text("UPDATE goals SET reserved_tokens = reserved_tokens + :tokens, "
             "reserved_usd = reserved_usd + :usd WHERE id = :id"),
        {"id": goal_id, "tokens": reservation.tokens, "usd": Decimal(str(reservation.cost_usd))},
    )
    return check


def release(connection: Connection, *, goal_id: uuid.UUID, reservation: Reservation) -> None:
    """Give a reservation back (the call was recorded, or not made)."""
    connection.execute(
        text("UPDATE goals SET reserved_tokens = greatest(reserved_tokens - :tokens, 0), "
             "reserved_usd = greatest(reserved_usd - :usd, 0) WHERE id = :id"),
        {"id": goal_id, "tokens": reservation.tokens, "usd": Decimal(str(reservation.cost_usd))},
    )
