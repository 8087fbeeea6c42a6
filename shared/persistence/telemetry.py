"""Reads for telemetry: a goal's stored trace context, and the fleet-wide figures the
gateway's ``/metrics`` computes at scrape time (goals by status, the queue of steps).

These are fleet-wide truths kept in Postgres, so any gateway reports them without the
workers' help. Each query is one indexed aggregate.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from shared.domain.models import StepStatus
from shared.persistence.tables import goals, steps


def goal_traceparents(connection: Connection, *, goal_ids: Iterable[uuid.UUID]
                      ) -> dict[uuid.UUID, str]:
    """The W3C ``traceparent`` stored at submission, for each goal that has one."""
    ids = list(goal_ids)
    if not ids:
        return {}
    rows = connection.execute(
        select(goals.c.id, goals.c.traceparent)
        .where(goals.c.id.in_(ids), goals.c.traceparent.is_not(None))
    ).all()
    return {row.id: row.traceparent for row in rows}


def goals_by_status(connection: Connection) -> dict[str, int]:
    """How many goals are in each status (every tenant together)."""
    rows = connection.execute(
        select(goals.c.status, func.count()).group_by(goals.c.status)).all()
    return {status: int(count) for status, count in rows}


def step_queue(connection: Connection) -> tuple[int, float]:
    """``(steps queued, age in seconds of the oldest of them)``; ``(0, 0.0)`` when none.

    A queued step is one whose dependencies are all done and that no worker has claimed
    yet (whether its message is on the broker or lost, which the reconciler repairs).
    """
    row = connection.execute(
        select(func.count(),
               func.coalesce(func.extract("epoch", func.now() - func.min(steps.c.queued_at)),
                             0))
        .where(steps.c.status == StepStatus.QUEUED.value)
    ).one()
    return int(row[0]), max(0.0, float(row[1]))
