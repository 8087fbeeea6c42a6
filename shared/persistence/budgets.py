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

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from shared.persistence.tables import goals, llm_calls


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
    calls = llm_calls.c.goal_id == goals.c.id
    spent_tokens = select(func.coalesce(
        func.sum(llm_calls.c.input_tokens + llm_calls.c.output_tokens), 0)).where(calls)
    spent_usd = select(func.coalesce(func.sum(llm_calls.c.cost_usd), 0)).where(calls)
    row = connection.execute(
        select(goals.c.max_tokens, goals.c.max_cost_usd, goals.c.reserved_tokens,
               goals.c.reserved_usd, spent_tokens.scalar_subquery().label("spent_tokens"),
               spent_usd.scalar_subquery().label("spent_usd"))
        .where(goals.c.id == goal_id)
        .with_for_update()
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
        update(goals).where(goals.c.id == goal_id)
        .values(reserved_tokens=goals.c.reserved_tokens + reservation.tokens,
                reserved_usd=goals.c.reserved_usd + Decimal(str(reservation.cost_usd)))
    )
    return check


def release(connection: Connection, *, goal_id: uuid.UUID, reservation: Reservation) -> None:
    """Give a reservation back (the call was recorded, or not made)."""
    usd = Decimal(str(reservation.cost_usd))
    connection.execute(
        update(goals).where(goals.c.id == goal_id)
        .values(reserved_tokens=func.greatest(goals.c.reserved_tokens - reservation.tokens, 0),
                reserved_usd=func.greatest(goals.c.reserved_usd - usd, 0))
    )
