"""Per-goal budgets of tokens and USD, enforced before every LLM call.

Before a call, its worst case (estimated input tokens plus its output cap, priced at
the model's rates) is reserved under the goal row lock against what the goal has spent
(its ``llm_calls``) and what calls in flight have reserved; a call that does not fit is
not made. After the call, the reservation is released in the same transaction that
records what the call really cost. Parallel steps of one goal therefore never overspend
between them.

The same reservation is made against the goal's tenant's spend of the day (UTC), in a
``tenant_daily_spend`` row locked after the goal row (always in this order), so that no
tenant's calls, whichever workers make them, spend past its ``daily_usd`` ceiling
(the tenant's column, else ``TENANT_DAILY_USD``). Calls priced at $0 (``sim``,
self-hosted) skip the daily row. A reservation made before midnight UTC and released
after it is given back on the new day's row (the old day's row keeps it; it no longer
limits anything).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from shared.persistence.keys import DEFAULT_TENANT_ID
from shared.persistence.tables import goals, llm_calls, tenant_daily_spend, tenants
from shared.settings import get_settings


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
        daily_usd: The tenant's daily ceiling (USD), when it refused the call.
        daily_spent_usd: What the tenant's calls cost today (UTC), when it refused.
        daily_reserved_usd: What the tenant's calls in flight hold, when it refused.
    """

    granted: bool
    spent_tokens: int
    spent_usd: float
    reserved_tokens: int
    reserved_usd: float
    max_tokens: int | None
    max_cost_usd: float | None
    daily_usd: float | None = None
    daily_spent_usd: float = 0.0
    daily_reserved_usd: float = 0.0

    def describe(self, reservation: Reservation) -> str:
        """Why the call does not fit, for the goal's ``budget_exceeded:`` reason."""
        if self.daily_usd is not None:
            return (f"tenant daily ceiling ${self.daily_usd:.6f} (UTC day) reached: the call "
                    f"may cost ${reservation.cost_usd:.6f}, ${self.daily_spent_usd:.6f} is "
                    f"spent and ${self.daily_reserved_usd:.6f} reserved today")
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

    Runs under the goal row lock (taken here), in the caller's transaction; then, for a
    priced call, under the lock of the tenant's row of the day in ``tenant_daily_spend``.
    """
    calls = llm_calls.c.goal_id == goals.c.id
    spent_tokens = select(func.coalesce(
        func.sum(llm_calls.c.input_tokens + llm_calls.c.output_tokens), 0)).where(calls)
    spent_usd = select(func.coalesce(func.sum(llm_calls.c.cost_usd), 0)).where(calls)
    row = connection.execute(
        select(goals.c.max_tokens, goals.c.max_cost_usd, goals.c.reserved_tokens,
               goals.c.tenant_id,
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
        return replace(check, granted=False)
    if reservation.cost_usd > 0:
        tenant_id = row.tenant_id or DEFAULT_TENANT_ID
        refused = _reserve_daily(connection, tenant_id, Decimal(str(reservation.cost_usd)))
        if refused is not None:
            return replace(check, granted=False, daily_usd=refused[0],
                           daily_spent_usd=refused[1], daily_reserved_usd=refused[2])
    connection.execute(
        update(goals).where(goals.c.id == goal_id)
        .values(reserved_tokens=goals.c.reserved_tokens + reservation.tokens,
                reserved_usd=goals.c.reserved_usd + Decimal(str(reservation.cost_usd)))
    )
    return check


def release(connection: Connection, *, goal_id: uuid.UUID, reservation: Reservation,
            spent_usd: float = 0.0) -> None:
    """Give a reservation back (the call was recorded, or not made), and add what the
    call cost (``spent_usd``, USD) to its tenant's spend of the day."""
    usd = Decimal(str(reservation.cost_usd))
    tenant_id = connection.execute(
        update(goals).where(goals.c.id == goal_id)
        .values(reserved_tokens=func.greatest(goals.c.reserved_tokens - reservation.tokens, 0),
                reserved_usd=func.greatest(goals.c.reserved_usd - usd, 0))
        .returning(goals.c.tenant_id)
    ).scalar()
    if reservation.cost_usd <= 0 and spent_usd <= 0:
        return
    spent = Decimal(str(spent_usd))
    daily = tenant_daily_spend.c
    connection.execute(
        pg_insert(tenant_daily_spend)
        .values(tenant_id=tenant_id or DEFAULT_TENANT_ID, day=_today(), spent_usd=spent)
        .on_conflict_do_update(
            constraint="pk_tenant_daily_spend",
            set_={"spent_usd": daily.spent_usd + spent,
                  "reserved_usd": func.greatest(daily.reserved_usd - usd, 0)})
    )


def _today() -> date:
    return datetime.now(UTC).date()


def _reserve_daily(connection: Connection, tenant_id: uuid.UUID,
                   usd: Decimal) -> tuple[float, float, float] | None:
    """Reserve ``usd`` against the tenant's ceiling of the day, under its row lock.

    Returns None when reserved, else (ceiling, spent, reserved) in USD.
    """
    day = _today()
    connection.execute(pg_insert(tenant_daily_spend).values(tenant_id=tenant_id, day=day)
                       .on_conflict_do_nothing(constraint="pk_tenant_daily_spend"))
    key = (tenant_daily_spend.c.tenant_id == tenant_id) & (tenant_daily_spend.c.day == day)
    spent, reserved = connection.execute(
        select(tenant_daily_spend.c.spent_usd, tenant_daily_spend.c.reserved_usd)
        .where(key).with_for_update()
    ).one()
    column = connection.execute(
        select(tenants.c.daily_usd).where(tenants.c.id == tenant_id)).scalar()
    ceiling = Decimal(str(get_settings().tenant_daily_usd)) if column is None else column
    if spent + reserved + usd > ceiling:
        return float(ceiling), float(spent), float(reserved)
    connection.execute(update(tenant_daily_spend).where(key)
                       .values(reserved_usd=tenant_daily_spend.c.reserved_usd + usd))
    return None
