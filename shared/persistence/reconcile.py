"""The reconciler: repairs what crashes and lost messages leave behind, from Postgres.

Run by beat every ``RECONCILE_INTERVAL_S`` (and by ``taskforce reconcile``), one at a
time across the fleet: each run takes a Postgres advisory lock and skips if another
holds it. Every repair is conditional on the state it repairs, and re-publishing is
harmless (a duplicate ``run_step`` is a no-op), so a run racing a live worker does no
damage. Goals are ended one by one, each in a SAVEPOINT: a goal whose end raises (its
episode cannot be written, say) is ended ``failed`` without it, with a reason starting
``reconcile_failed:``, and never rolls back the repairs of the other goals.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import ColumnElement, Text, case, cast, exists, func, literal, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from shared.domain.models import GoalMode, GoalStatus, StepKind, StepStatus
from shared.persistence import approvals, react
from shared.persistence import goals as goal_store
from shared.persistence.retry import is_transient
from shared.persistence.tables import goals, steps

log = logging.getLogger(__name__)

# Arbitrary but fixed: the advisory lock that makes the reconciler single at a time.
RECONCILER_LOCK_KEY = 72_071_001


@dataclass
class Repairs:
    """What one reconciler run found and did.

    Attributes:
        locked: False when another reconciler held the lock (nothing was done).
        steps_to_publish: ``(goal_id, step_id, kind)`` to publish after the commit:
            steps whose lease expired, and steps queued too long without running.
        goals_to_plan: Goals left ``pending`` or ``planning`` too long, to re-publish.
        goals_finished: Goals whose completion had not been recorded (``succeeded``) or
            whose failed step had not failed them, now ended.
        steps_failed: Steps that reached their attempt cap, failed with ``worker_lost``.
        approvals_timed_out: Steps that awaited approval too long, rejected (their goals
            failed).
        react_turns: ``(goal_id, turn)`` of ReAct goals whose next turn's message was
            lost (every step finished ``stale_s`` ago, no turn under way), to publish.
    """

    locked: bool = True
    steps_to_publish: list[tuple[uuid.UUID, int, str]] = field(default_factory=list)
    goals_to_plan: list[uuid.UUID] = field(default_factory=list)
    goals_finished: list[uuid.UUID] = field(default_factory=list)
    steps_failed: list[tuple[uuid.UUID, int]] = field(default_factory=list)
    approvals_timed_out: list[tuple[uuid.UUID, int]] = field(default_factory=list)
    react_turns: list[tuple[uuid.UUID, int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, int | bool]:
        """Counts, for logs and the CLI."""
        return {
            "locked": self.locked,
            "steps_republished": len(self.steps_to_publish),
            "goals_replanned": len(self.goals_to_plan),
            "goals_finished": len(self.goals_finished),
            "steps_failed_worker_lost": len(self.steps_failed),
            "approvals_timed_out": len(self.approvals_timed_out),
            "react_turns_republished": len(self.react_turns),
        }


_GOAL_RUNNING = goals.c.status == GoalStatus.RUNNING.value
_STEP_RUNNING = steps.c.status == StepStatus.RUNNING.value
_LEASE_EXPIRED = steps.c.lease_expires_at < func.now()


def _older_than(column: ColumnElement, seconds: float) -> ColumnElement[bool]:
    return column < func.now() - timedelta(seconds=seconds)


def _end_goal(connection: Connection, goal_id: uuid.UUID, status: GoalStatus, *,
              answer: str | None = None, error: str | None = None) -> bool:
    """End one goal inside a SAVEPOINT; returns False if it was no longer running.

    If ending it raises anything but a lost connection, the savepoint is rolled back and
    the goal is ended ``failed`` with ``reconcile_failed: ...`` and no episode; if even
    that raises, it is logged and left for the next pass. Either way the caller's
    transaction, and every other goal's repair in it, stands.
    """
    try:
        with connection.begin_nested():
            if goal_store.lock_goal(connection, goal_id=goal_id) != GoalStatus.RUNNING.value:
                return False
            return goal_store.finish_goal(connection, goal_id=goal_id, status=status,
                                          answer=answer, error=error)
    except Exception as exc:
        if isinstance(exc, DBAPIError) and is_transient(exc):
            raise
        log.warning("reconciler: ending goal %s raised; ending it failed without its "
                    "episode", goal_id, exc_info=True)
        reason = f"reconcile_failed: ending the goal raised {type(exc).__name__}"
        if error:
            reason += f" ({error})"
    try:
        with connection.begin_nested():
            return bool(connection.execute(
                update(goals)
                .where(goals.c.id == goal_id, goals.c.status == GoalStatus.RUNNING.value)
                .values(status=GoalStatus.FAILED.value, error=reason, finished_at=func.now(),
                        updated_at=func.now())
            ).rowcount)
    except Exception as exc:
        if isinstance(exc, DBAPIError) and is_transient(exc):
            raise
        log.error("reconciler: goal %s cannot be ended; left for the next pass", goal_id,
                  exc_info=True)
        return False


def _fail_lost_steps(connection: Connection, repairs: Repairs, max_attempts: int) -> None:
    rows = connection.execute(
        update(steps)
        .where(goals.c.id == steps.c.goal_id, _GOAL_RUNNING, _STEP_RUNNING, _LEASE_EXPIRED,
               steps.c.attempt >= max_attempts)
        .values(status=StepStatus.FAILED.value, finished_at=func.now(),
                error=func.concat("worker_lost: the lease expired ", steps.c.attempt, " times"))
        .returning(steps.c.goal_id, steps.c.step_id, steps.c.error)
    ).all()
    for row in rows:
        _end_goal(connection, row.goal_id, GoalStatus.FAILED,
                  error=f"step_failed: step {row.step_id}: {row.error}")
        repairs.steps_failed.append((row.goal_id, row.step_id))


def _republish_steps(connection: Connection, repairs: Repairs, stale_s: float) -> None:
    # Expired leases: the claim will take the step over (attempt + 1). Queued too long:
    # the message may be lost. queued_at doubles as "last published", so a step is
    # re-published at most once per stale period.
    rows = connection.execute(
        update(steps)
        .where(goals.c.id == steps.c.goal_id, _GOAL_RUNNING,
               (_STEP_RUNNING & _LEASE_EXPIRED)
               | ((steps.c.status == StepStatus.QUEUED.value)
                  & _older_than(steps.c.queued_at, stale_s)))
        .values(queued_at=func.now())
        .returning(steps.c.goal_id, steps.c.step_id, steps.c.kind)
    ).all()
    repairs.steps_to_publish.extend((r.goal_id, r.step_id, r.kind) for r in rows)


def _replan_goals(connection: Connection, repairs: Repairs, stale_s: float,
                  planning_stale_s: float) -> None:
    planning = goals.c.status == GoalStatus.PLANNING.value
    rows = connection.execute(
        update(goals)
        .where(
            (goals.c.status.in_([GoalStatus.PENDING.value, GoalStatus.REPLANNING.value])
             & _older_than(goals.c.updated_at, stale_s))
            | (planning & _older_than(goals.c.updated_at, planning_stale_s)))
        .values(updated_at=case((planning, goals.c.updated_at), else_=func.now()))
        .returning(goals.c.id)
    ).scalars()
    repairs.goals_to_plan.extend(rows)


def _finish_unrecorded(connection: Connection, repairs: Repairs) -> None:
    s = steps.alias("s")
    current = (s.c.goal_id == goals.c.id, s.c.plan_version == goals.c.plan_version)
    synthesized = (s.c.kind == StepKind.SYNTHESIZE.value) & (
        s.c.status == StepStatus.SUCCEEDED.value)
    failed = s.c.status == StepStatus.FAILED.value
    answer = select(s.c.result["answer"].astext).where(*current, synthesized)
    error = (
        select(literal("step_failed: step ") + cast(s.c.step_id, Text) + ": " + s.c.error)
        .where(*current, failed).order_by(s.c.finished_at).limit(1)
    )
    rows = connection.execute(
        select(goals.c.id, answer.scalar_subquery().label("answer"),
               error.scalar_subquery().label("error"))
        # A ReAct goal keeps its failed actions in its one plan (each failure is seen by
        # its next turn) and records its answer as it ends: none of this applies to it.
        .where(_GOAL_RUNNING, goals.c.mode == GoalMode.DAG.value,
               exists().where(*current, failed | synthesized))
    ).all()
    for row in rows:
        if row.answer is not None:
            ended = _end_goal(connection, row.id, GoalStatus.SUCCEEDED, answer=row.answer)
        else:
            ended = _end_goal(connection, row.id, GoalStatus.FAILED, error=row.error)
        if ended:
            repairs.goals_finished.append(row.id)


def reconcile(
    connection: Connection, *, stale_s: float, planning_stale_s: float, max_attempts: int,
    approval_timeout_s: float | None = None,
) -> Repairs:
    """One reconciler pass, inside the caller's transaction (publish after the commit).

    In order: fail steps whose lease expired at their attempt cap (``worker_lost``),
    re-publish steps whose lease expired or that sat ``queued`` for ``stale_s`` seconds,
    re-publish ``plan_goal`` for goals ``pending`` for ``stale_s`` or ``planning`` for
    ``planning_stale_s`` seconds, finish running goals whose synthesize step
    succeeded or whose step failed without the goal's end being recorded, and (with
    ``approval_timeout_s``) reject steps awaiting approval for longer than that many
    seconds, failing their goals.
    """
    locked = connection.execute(
        select(func.pg_try_advisory_xact_lock(RECONCILER_LOCK_KEY))).scalar()
    repairs = Repairs(locked=bool(locked))
    if not locked:
        return repairs
    _fail_lost_steps(connection, repairs, max_attempts)
    _republish_steps(connection, repairs, stale_s)
    _replan_goals(connection, repairs, stale_s, planning_stale_s)
    _finish_unrecorded(connection, repairs)
    repairs.react_turns.extend(react.stalled_turns(connection, stale_s=stale_s))
    if approval_timeout_s is not None:
        repairs.approvals_timed_out.extend(
            approvals.expire(connection, timeout_s=approval_timeout_s))
    return repairs
