"""Step timings read back from Postgres, for the benchmarks: when each step started and
finished, and what it waited for. Read-only; the step protocol never uses it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from shared.domain.models import StepStatus
from shared.persistence.tables import steps


@dataclass(frozen=True)
class StepTiming:
    """One step's times, as Postgres recorded them (its clock, so comparable).

    Attributes:
        goal_id: The step's goal.
        step_id: The step's number.
        kind: ``tool``, ``validate`` or ``synthesize``.
        depends_on: Numbers of the steps it waited for.
        started_at: When its (first) claim ran, or None.
        finished_at: When its result was committed, or None.
    """

    goal_id: uuid.UUID
    step_id: int
    kind: str
    depends_on: tuple[int, ...]
    started_at: datetime | None
    finished_at: datetime | None


def step_timings(connection: Connection, *, goal_ids: Iterable[uuid.UUID]) -> list[StepTiming]:
    """The timings of every step of ``goal_ids`` (one query)."""
    rows = connection.execute(
        select(steps.c.goal_id, steps.c.step_id, steps.c.kind, steps.c.depends_on,
               steps.c.started_at, steps.c.finished_at)
        .where(steps.c.goal_id.in_(list(goal_ids)))
    ).all()
    return [StepTiming(r.goal_id, r.step_id, r.kind, tuple(r.depends_on), r.started_at,
                       r.finished_at) for r in rows]


def running_steps_by_owner(connection: Connection) -> dict[str, int]:
    """How many steps are ``running`` right now, by lease owner (``host/pid/thread``)
    reduced to its process (``host/pid``); one query, one moment."""
    owner = func.split_part(steps.c.lease_owner, "/", 1) + "/" + func.split_part(
        steps.c.lease_owner, "/", 2)
    rows = connection.execute(
        select(owner.label("process"), func.count())
        .where(steps.c.status == StepStatus.RUNNING.value)
        .group_by(owner)
    ).all()
    return {process: count for process, count in rows}


def goals_with_a_started_step(connection: Connection, *, goal_ids: Iterable[uuid.UUID]) -> int:
    """How many of ``goal_ids`` have at least one step that has started (one query)."""
    return connection.execute(
        select(func.count(func.distinct(steps.c.goal_id)))
        .where(steps.c.goal_id.in_(list(goal_ids)), steps.c.started_at.is_not(None))
    ).scalar_one()


def database_now(connection: Connection) -> datetime:
    """The database server's clock (the one that stamps every step)."""
    return connection.execute(select(func.now())).scalar_one()
