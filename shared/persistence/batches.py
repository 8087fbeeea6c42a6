"""Batches of goals in SQL: store one, read it back for its tenant, count its goals by
status and sum their cost.

Every function takes an open ``Connection``; queries are SQLAlchemy Core expressions.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Connection

from shared.persistence.batch_tables import batches
from shared.persistence.tables import goals, llm_calls


def create_batch(connection: Connection, *, tenant_id: uuid.UUID, total: int) -> uuid.UUID:
    """Insert an empty batch of ``total`` items (its items are recorded when submitted)."""
    batch_id = uuid.uuid4()
    connection.execute(insert(batches).values(id=batch_id, tenant_id=tenant_id, total=total,
                                              accepted=0, items=[]))
    return batch_id


def record_items(connection: Connection, *, batch_id: uuid.UUID,
                 items: Sequence[dict[str, Any]]) -> None:
    """Store the outcome of every item (``{"index", "id", "goal_id", "status_code",
    "error"}``) and how many became goals."""
    accepted = sum(1 for item in items if item.get("goal_id"))
    connection.execute(update(batches).where(batches.c.id == batch_id)
                       .values(items=list(items), accepted=accepted))


def get_batch(connection: Connection, *, batch_id: uuid.UUID,
              tenant_id: uuid.UUID) -> dict[str, Any] | None:
    """The batch's row if ``tenant_id`` owns it, else None (unknown and foreign alike)."""
    row = connection.execute(
        select(batches).where(batches.c.id == batch_id, batches.c.tenant_id == tenant_id)
    ).mappings().first()
    return dict(row) if row else None


def _members(batch_id: uuid.UUID, goal_ids: Sequence[uuid.UUID]):
    """Goals submitted by the batch, and those its items replayed by idempotency key."""
    return or_(goals.c.batch_id == batch_id, goals.c.id.in_(list(goal_ids)))


def batch_totals(connection: Connection, *, batch_id: uuid.UUID,
                 goal_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    """Counts of the batch's goals by status, and their LLM tokens and cost so far.

    Returns:
        ``{"counts": {status: n}, "input_tokens", "output_tokens", "cost_usd"}`` (USD).
    """
    members = _members(batch_id, goal_ids)
    counts = {row.status: row.n for row in connection.execute(
        select(goals.c.status, func.count().label("n")).where(members)
        .group_by(goals.c.status))}
    spent = connection.execute(
        select(func.coalesce(func.sum(llm_calls.c.input_tokens), 0),
               func.coalesce(func.sum(llm_calls.c.output_tokens), 0),
               func.coalesce(func.sum(llm_calls.c.cost_usd), 0))
        .select_from(llm_calls.join(goals, goals.c.id == llm_calls.c.goal_id))
        .where(members)
    ).one()
    return {"counts": counts, "input_tokens": int(spent[0]), "output_tokens": int(spent[1]),
            "cost_usd": float(spent[2])}
