"""Tenants' quota columns and their goals in flight, in SQL.

Every function takes an open ``Connection`` and commits nothing itself. The columns are
``goals_per_minute``, ``max_goals_in_flight``, ``daily_usd``, ``max_tokens_per_goal``,
``max_cost_usd_per_goal`` and ``allowed_models``; NULL means the global setting
(:mod:`shared.quotas`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from shared.persistence.tables import goals, tenants

LIMIT_COLUMNS = ("goals_per_minute", "max_goals_in_flight", "daily_usd",
                 "max_tokens_per_goal", "max_cost_usd_per_goal", "allowed_models",
                 "memory_max_items")
FINAL_STATUSES = ("succeeded", "failed", "cancelled")  # GoalStatus.is_final


def limits_row(connection: Connection, *, tenant_id: uuid.UUID) -> dict[str, Any] | None:
    """The tenant's limit columns (None values: the global setting), or None if there is
    no such tenant."""
    row = connection.execute(
        select(*(tenants.c[name] for name in LIMIT_COLUMNS)).where(tenants.c.id == tenant_id)
    ).mappings().first()
    return dict(row) if row else None


def lock_and_count_in_flight(connection: Connection, *, tenant_id: uuid.UUID) -> int:
    """Lock the tenant row (``FOR UPDATE``, until the caller's transaction ends) and count
    the tenant's goals not in a final state (through ``ix_goals_tenant_in_flight``).

    Holding the lock while the goal is inserted makes check and insert one atomic step:
    concurrent submissions of one tenant, from any gateway process, queue on the row.
    """
    connection.execute(select(tenants.c.id).where(tenants.c.id == tenant_id).with_for_update())
    return connection.execute(
        select(func.count()).select_from(goals)
        .where(goals.c.tenant_id == tenant_id, goals.c.status.not_in(FINAL_STATUSES))
    ).scalar_one()


def has_idempotency_key(connection: Connection, *, tenant_id: uuid.UUID, key: str) -> bool:
    """True if the tenant already stored a goal under this idempotency key."""
    return connection.execute(
        select(goals.c.id).where(goals.c.tenant_id == tenant_id,
                                 goals.c.idempotency_key == key)
    ).first() is not None


def set_limits(connection: Connection, *, name: str,
               values: dict[str, Any]) -> dict[str, Any] | None:
    """Set some of the tenant's limit columns (a None value: back to the global setting).

    Returns:
        The tenant's limit columns after the update, or None if no tenant has that name.

    Raises:
        ValueError: A key of ``values`` is not one of :data:`LIMIT_COLUMNS`.
    """
    unknown = set(values) - set(LIMIT_COLUMNS)
    if unknown:
        raise ValueError(f"not a tenant limit: {', '.join(sorted(unknown))}")
    statement = update(tenants).where(tenants.c.name == name)
    if values:
        statement = statement.values(**values)
    else:
        statement = statement.values(name=tenants.c.name)
    row = connection.execute(
        statement.returning(*(tenants.c[c] for c in LIMIT_COLUMNS))).mappings().first()
    return dict(row) if row else None
