"""Approval of risky steps in SQL: a person's decision, and the timeout's.

A step whose tool requires approval is parked ``awaiting_approval`` by the worker that
first claims it (:func:`shared.persistence.steps.await_approval`). Deciding it is one
transaction under the goal row lock, the lock every change of a goal's steps takes:

* approve: ``awaiting_approval → queued`` with the decision recorded; the caller
  publishes ``run_step`` after the commit, and the next claim sees
  ``approval = 'approved'`` and runs the tool.
* reject: ``awaiting_approval → failed`` with ``approval_rejected: <reason>``, and the
  goal ends ``failed`` (a person said no: no replan).

Both UPDATEs are conditional on ``awaiting_approval``, so of two concurrent decisions
one wins and the other finds nothing to decide.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from shared.domain.models import ApprovalDecision, GoalStatus, StepStatus
from shared.errors import GoalNotFoundError, StepNotAwaitingApprovalError, StepNotFoundError
from shared.persistence import goals as goal_store
from shared.persistence.tables import goals, steps

REJECTED_PREFIX = "approval_rejected: "


@dataclass(frozen=True)
class Decided:
    """A decision that took effect.

    Attributes:
        decision: ``approved`` or ``rejected``.
        kind: The step's kind; an approved step is to be published as ``(step_id, kind)``
            after the commit.
    """

    decision: ApprovalDecision
    kind: str


def rejection_error(reason: str | None) -> str:
    """The step's error for a rejection: ``approval_rejected: <reason>``."""
    return REJECTED_PREFIX + (reason or "no reason given")


def _decide(connection: Connection, *, goal_id: uuid.UUID, step_id: int,
            decision: ApprovalDecision, by: str, reason: str | None) -> str | None:
    """The conditional UPDATE of one decision (goal row already locked); the step's kind,
    or None when the step was not awaiting approval."""
    values: dict = {"approval": decision.value, "approval_by": by,
                    "approval_at": func.now(), "approval_reason": reason}
    if decision is ApprovalDecision.APPROVED:
        values |= {"status": StepStatus.QUEUED.value, "queued_at": func.now()}
    else:
        values |= {"status": StepStatus.FAILED.value, "finished_at": func.now(),
                   "error": rejection_error(reason)}
    kind = connection.execute(
        update(steps)
        .where(steps.c.goal_id == goal_id, steps.c.step_id == step_id,
               steps.c.status == StepStatus.AWAITING_APPROVAL.value)
        .values(**values)
        .returning(steps.c.kind)
    ).scalar()
    if kind is not None and decision is ApprovalDecision.REJECTED:
        goal_store.finish_goal(
            connection, goal_id=goal_id, status=GoalStatus.FAILED,
            error=f"step_failed: step {step_id}: {rejection_error(reason)}")
    return kind


def decide(connection: Connection, *, goal_id: uuid.UUID, step_id: int,
           decision: ApprovalDecision, by: str, reason: str | None) -> Decided:
    """Approve or reject a step awaiting approval, inside the caller's transaction.

    Args:
        goal_id: The goal.
        step_id: The step's number.
        decision: ``approved`` (the step is queued) or ``rejected`` (the step and its
            goal fail).
        by: Who decides: an API key id, ``cli`` or ``api``.
        reason: Optional reason, stored with the decision.

    Raises:
        GoalNotFoundError: No goal has this id.
        StepNotFoundError: The goal has no such step.
        StepNotAwaitingApprovalError: The step is not awaiting approval (it never asked,
            was decided already, or its goal ended).
    """
    goal_status = goal_store.lock_goal(connection, goal_id=goal_id)
    if goal_status is None:
        raise GoalNotFoundError(f"no goal with id {goal_id}")
    kind = None
    if goal_status == GoalStatus.RUNNING.value:
        kind = _decide(connection, goal_id=goal_id, step_id=step_id, decision=decision,
                       by=by, reason=reason)
    if kind is not None:
        return Decided(decision=decision, kind=kind)
    step_status = connection.execute(
        select(steps.c.status).where(steps.c.goal_id == goal_id, steps.c.step_id == step_id)
    ).scalar()
    if step_status is None:
        raise StepNotFoundError(f"goal {goal_id} has no step {step_id}")
    raise StepNotAwaitingApprovalError(
        f"step {step_id} is {step_status} (goal {goal_status}), not awaiting approval")


def expire(connection: Connection, *, timeout_s: float) -> list[tuple[uuid.UUID, int]]:
    """Reject every step awaiting approval for longer than ``timeout_s`` seconds
    (``approval_by = 'timeout'``) and fail its goal, inside the caller's transaction.

    Each goal row is locked before its step is decided, the same order as a person's
    decision, so a decision racing the timeout waits for it and then finds nothing to
    decide (or the other way round).

    Returns:
        ``(goal_id, step_id)`` of the steps rejected.
    """
    due = connection.execute(
        select(steps.c.goal_id, steps.c.step_id)
        .where(goals.c.id == steps.c.goal_id, goals.c.status == GoalStatus.RUNNING.value,
               steps.c.status == StepStatus.AWAITING_APPROVAL.value,
               steps.c.approval_requested_at < func.now() - timedelta(seconds=timeout_s))
        .order_by(steps.c.goal_id, steps.c.step_id)
    ).all()
    rejected = []
    for goal_id, step_id in due:
        if goal_store.lock_goal(connection, goal_id=goal_id) != GoalStatus.RUNNING.value:
            continue
        if _decide(connection, goal_id=goal_id, step_id=step_id,
                   decision=ApprovalDecision.REJECTED, by="timeout",
                   reason=f"timed out after {timeout_s:g} s") is not None:
            rejected.append((goal_id, step_id))
    return rejected
