"""Listing a tenant's goals: filters and keyset pages on ``(created_at, id)``, newest
first, each goal with its token and cost totals.

Every function takes an open ``Connection``; queries are SQLAlchemy Core expressions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, true, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from shared.persistence.tables import goals, llm_calls


@dataclass(frozen=True)
class GoalFilters:
    """What a listing keeps; every field is optional but the tenant.

    Attributes:
        tenant_id: The owner; only its goals are listed.
        include_unowned: Also list goals stored before tenants existed (no owner): true
            for the ``default`` tenant, which owns them.
        statuses: Goal statuses to keep (empty: all).
        created_after: Keep goals created at or after this instant.
        created_before: Keep goals created before this instant.
        metadata: ``(key, value)`` pairs that must all match the goal's metadata (the
            value compared as text: ``{"n": 3}`` matches ``("n", "3")``).
        provider: Exact provider name.
        model: Exact model name.
        batch_id: Only goals of this batch.
        session_id: Only goals of this session.
    """

    tenant_id: uuid.UUID
    include_unowned: bool = False
    statuses: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    provider: str | None = None
    model: str | None = None
    batch_id: uuid.UUID | None = None
    session_id: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """The WHERE clauses of these filters (a new filter is one more clause here)."""
        owner = goals.c.tenant_id == self.tenant_id
        if self.include_unowned:
            owner = or_(owner, goals.c.tenant_id.is_(None))
        clauses = [owner]
        if self.statuses:
            clauses.append(goals.c.status.in_(self.statuses))
        if self.created_after is not None:
            clauses.append(goals.c.created_at >= self.created_after)
        if self.created_before is not None:
            clauses.append(goals.c.created_at < self.created_before)
        for key, value in self.metadata:
            clauses.append(goals.c.metadata[key].astext == value)
        if self.provider is not None:
            clauses.append(goals.c.provider == self.provider)
        if self.model is not None:
            clauses.append(goals.c.model == self.model)
        if self.batch_id is not None:
            clauses.append(goals.c.batch_id == self.batch_id)
        if self.session_id is not None:
            clauses.append(goals.c.session_id == self.session_id)
        return clauses


def list_goals(connection: Connection, *, filters: GoalFilters, limit: int,
               after: tuple[datetime, uuid.UUID] | None = None) -> list[dict[str, Any]]:
    """One page of goals, newest first.

    Args:
        filters: What to keep.
        limit: Most rows returned.
        after: ``(created_at, id)`` of the last goal of the previous page: this page
            starts strictly after it.

    Returns:
        Rows with the goal's ``id``, ``text``, ``status``, ``provider``, ``model``,
        ``metadata``, ``batch_id``, ``error``, ``created_at``, ``finished_at``,
        ``input_tokens``, ``output_tokens`` and ``cost_usd`` (USD).
    """
    totals = (
        select(
            func.coalesce(func.sum(llm_calls.c.input_tokens), 0).label("input_tokens"),
            func.coalesce(func.sum(llm_calls.c.output_tokens), 0).label("output_tokens"),
            func.coalesce(func.sum(llm_calls.c.cost_usd), 0).label("cost_usd"),
        )
        .where(llm_calls.c.goal_id == goals.c.id)
        .lateral("totals")
    )
    clauses = filters.conditions()
    if after is not None:
        clauses.append(tuple_(goals.c.created_at, goals.c.id) < tuple_(*after))
    query = (
        select(goals.c.id, goals.c.text, goals.c.status, goals.c.provider, goals.c.model,
               goals.c.metadata, goals.c.batch_id, goals.c.error, goals.c.created_at,
               goals.c.finished_at, totals)
        .select_from(goals.join(totals, true()))
        .where(and_(*clauses))
        .order_by(goals.c.created_at.desc(), goals.c.id.desc())
        .limit(limit)
    )
    return [dict(row) for row in connection.execute(query).mappings()]
