"""What a goal's event stream and its console page read: step changes in order (by
``steps.change_seq``, set by a trigger, migration 0012) and costs by day, provider and
model.

Every function takes an open ``Connection``; queries are SQLAlchemy Core expressions.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import Date, cast, func, or_, select
from sqlalchemy.engine import Connection

from shared.persistence.tables import cost_rollups, goals, llm_calls, steps


def goal_state(connection: Connection, *, goal_id: uuid.UUID) -> dict[str, Any] | None:
    """The goal's ``status``, ``error`` and ``finished_at``; None if there is no goal."""
    row = connection.execute(
        select(goals.c.status, goals.c.error, goals.c.finished_at).where(goals.c.id == goal_id)
    ).mappings().first()
    return dict(row) if row else None


def step_changes(connection: Connection, *, goal_id: uuid.UUID,
                 after_seq: int = 0) -> list[dict[str, Any]]:
    """The goal's steps whose last status or attempt change is numbered above
    ``after_seq``, in change order.

    Returns:
        Rows with ``change_seq``, ``step_id``, ``kind``, ``tool``, ``status``, ``attempt``,
        ``lease_owner``, ``started_at``, ``finished_at``, ``error`` and ``depends_on``.
    """
    return [dict(row) for row in connection.execute(
        select(steps.c.change_seq, steps.c.step_id, steps.c.kind, steps.c.tool,
               steps.c.status, steps.c.attempt, steps.c.lease_owner, steps.c.started_at,
               steps.c.finished_at, steps.c.error, steps.c.depends_on)
        .where(steps.c.goal_id == goal_id, steps.c.change_seq > after_seq)
        .order_by(steps.c.change_seq)
    ).mappings()]


def costs_from_rollups(connection: Connection, *, since: date) -> list[dict[str, Any]]:
    """The beat's cost rollups (every tenant) from ``since`` on, newest day first:
    ``day``, ``provider``, ``model``, ``calls``, ``input_tokens``, ``output_tokens``,
    ``cost_usd`` (USD)."""
    return [dict(row) for row in connection.execute(
        select(cost_rollups.c.day, cost_rollups.c.provider, cost_rollups.c.model,
               cost_rollups.c.calls, cost_rollups.c.input_tokens,
               cost_rollups.c.output_tokens, cost_rollups.c.cost_usd)
        .where(cost_rollups.c.day >= since)
        .order_by(cost_rollups.c.day.desc(), cost_rollups.c.cost_usd.desc())
    ).mappings()]


def costs_of_tenant(connection: Connection, *, tenant_id: uuid.UUID, since: date,
                    include_unowned: bool = False) -> list[dict[str, Any]]:
    """The same shape as :func:`costs_from_rollups`, summed from one tenant's LLM calls
    (UTC days), for a tenant that may not see the fleet-wide rollups."""
    day = cast(func.timezone("UTC", llm_calls.c.created_at), Date).label("day")
    owner = goals.c.tenant_id == tenant_id
    if include_unowned:
        owner = or_(owner, goals.c.tenant_id.is_(None))
    return [dict(row) for row in connection.execute(
        select(day, llm_calls.c.provider, llm_calls.c.model,
               func.count().label("calls"),
               func.sum(llm_calls.c.input_tokens).label("input_tokens"),
               func.sum(llm_calls.c.output_tokens).label("output_tokens"),
               func.sum(llm_calls.c.cost_usd).label("cost_usd"))
        .select_from(llm_calls.join(goals, goals.c.id == llm_calls.c.goal_id))
        .where(owner, llm_calls.c.created_at >= since)
        .group_by(day, llm_calls.c.provider, llm_calls.c.model)
        .order_by(day.desc(), func.sum(llm_calls.c.cost_usd).desc())
    ).mappings()]
