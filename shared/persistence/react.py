"""The ReAct turn protocol in SQL: claim a turn, read the history, append the action or
record the answer.

A ReAct goal (``goals.mode = 'react'``) is ``running`` while its latest action runs as an
ordinary step and ``planning`` while one turn's LLM call chooses the next one. Turn N
creates step N, so the turn number is the idempotency key of its message:

1. :func:`claim_turn` moves the goal ``running → planning`` only if its highest step is
   N - 1 and every step has finished (one conditional UPDATE). A second delivery finds
   the goal ``planning`` or step N present and does nothing.
2. The worker makes the turn's LLM call outside any transaction.
3. :func:`append_action` (under the goal's row lock, only if still ``planning``) inserts
   step N ``queued``, appends it to the goal's plan and moves the goal back to
   ``running``; the caller publishes ``run_step`` after the commit. Or
   :func:`record_answer` stores the answer as a ``synthesize`` step N and ends the goal.

A turn that crashes leaves the goal ``planning``: the reconciler re-publishes
``plan_goal`` after ``PLANNING_STALE_S``, which takes the same turn again. A lost
``react_turn`` message leaves the goal ``running`` with every step finished:
:func:`stalled_turns` finds it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from shared.domain.models import GoalMode, GoalStatus, Step, StepKind, StepStatus
from shared.persistence.goals import finish_goal, lock_goal
from shared.persistence.tables import goals, plans, steps

# Version of a ReAct goal's one plan row: every action is appended to it.
REACT_PLAN_VERSION = 1
REACT_RATIONALE = "ReAct: one LLM call chooses each next action from the observations"
_UNFINISHED = (StepStatus.PENDING.value, StepStatus.QUEUED.value, StepStatus.RUNNING.value,
               StepStatus.AWAITING_APPROVAL.value)


def _last_step_id(goal_id: Any) -> Any:
    return (select(func.coalesce(func.max(steps.c.step_id), 0))
            .where(steps.c.goal_id == goal_id).scalar_subquery())


def _unfinished(goal_id: Any) -> Any:
    return exists().where(steps.c.goal_id == goal_id, steps.c.status.in_(_UNFINISHED))


def claim_turn(connection: Connection, *, goal_id: uuid.UUID, turn: int
               ) -> dict[str, Any] | None:
    """Take turn ``turn`` of a running ReAct goal: ``running → planning``.

    Returns:
        The goal's row (as :func:`shared.persistence.goals.claim_goal_for_planning`
        returns it), or None: the goal is not a running ReAct goal, its last step is not
        ``turn - 1`` (the turn was taken already), or a step has not finished.
    """
    row = connection.execute(
        update(goals)
        .where(goals.c.id == goal_id, goals.c.status == GoalStatus.RUNNING.value,
               goals.c.mode == GoalMode.REACT.value,
               _last_step_id(goals.c.id) == turn - 1, ~_unfinished(goals.c.id))
        .values(status=GoalStatus.PLANNING.value, updated_at=func.now())
        .returning(goals.c.id, goals.c.text, goals.c.provider, goals.c.model,
                   goals.c.plan_version, goals.c.requested_plan, goals.c.replans,
                   goals.c.mode)
    ).mappings().first()
    return dict(row) if row else None


def history(connection: Connection, *, goal_id: uuid.UUID) -> list[dict[str, Any]]:
    """The goal's steps in order: ``{"step_id", "kind", "tool", "args", "status",
    "result", "error"}`` each."""
    rows = connection.execute(
        select(steps.c.step_id, steps.c.kind, steps.c.tool, steps.c.args, steps.c.status,
               steps.c.result, steps.c.error)
        .where(steps.c.goal_id == goal_id).order_by(steps.c.step_id)
    ).mappings().all()
    return [dict(r) for r in rows]


def _append_to_plan(connection: Connection, goal_id: uuid.UUID, step: Step) -> None:
    """Add ``step`` to the goal's one plan row (made at its first step); the caller
    holds the goal's row lock."""
    current = connection.execute(
        select(plans.c.plan).where(plans.c.goal_id == goal_id,
                                   plans.c.version == REACT_PLAN_VERSION)
    ).scalar()
    plan = current or {"steps": [], "rationale": REACT_RATIONALE}
    plan = plan | {"steps": [*plan["steps"], step.model_dump(mode="json", exclude_none=True)]}
    connection.execute(
        pg_insert(plans).values(goal_id=goal_id, version=REACT_PLAN_VERSION, plan=plan)
        .on_conflict_do_update(index_elements=[plans.c.goal_id, plans.c.version],
                               set_={"plan": plan})
    )


def _insert_step(connection: Connection, goal_id: uuid.UUID, step: Step, *, status: str,
                 result: Any = None) -> None:
    now = func.now()
    connection.execute(steps.insert().values(
        goal_id=goal_id, step_id=step.id, plan_version=REACT_PLAN_VERSION,
        kind=step.kind.value, tool=step.tool, args=step.args,
        depends_on=sorted(step.dependencies), description=step.description, status=status,
        queued_at=now, attempt=1 if result is not None else 0,
        started_at=now if result is not None else None,
        finished_at=now if result is not None else None, result=result,
    ))
    connection.execute(
        update(goals).where(goals.c.id == goal_id)
        .values(plan_version=REACT_PLAN_VERSION, updated_at=now)
    )
    _append_to_plan(connection, goal_id, step)


def append_action(connection: Connection, *, goal_id: uuid.UUID, step: Step) -> bool:
    """Store ``step`` (a tool step, the turn's action) ``queued`` and move the goal
    ``planning → running``; publish ``run_step`` after the commit.

    Returns:
        False (nothing stored) if the goal is no longer ``planning`` (cancelled, or a
        stale turn whose goal another delivery took over).
    """
    if lock_goal(connection, goal_id=goal_id) != GoalStatus.PLANNING.value:
        return False
    _insert_step(connection, goal_id, step, status=StepStatus.QUEUED.value)
    connection.execute(update(goals).where(goals.c.id == goal_id)
                       .values(status=GoalStatus.RUNNING.value))
    return True


def record_answer(connection: Connection, *, goal_id: uuid.UUID, step_id: int,
                  answer: str, simulated: bool, thought: str) -> bool:
    """Store the turn's answer as ``synthesize`` step ``step_id`` (``succeeded``, after
    every earlier step) and end the goal ``succeeded`` with its episode.

    Returns:
        False (nothing stored) if the goal is no longer ``planning``.
    """
    if lock_goal(connection, goal_id=goal_id) != GoalStatus.PLANNING.value:
        return False
    step = Step(id=step_id, kind=StepKind.SYNTHESIZE, args={},
                depends_on=list(range(1, step_id)), description=thought[:2_000] or None)
    _insert_step(connection, goal_id, step, status=StepStatus.SUCCEEDED.value,
                 result={"answer": answer, "simulated": simulated})
    return finish_goal(connection, goal_id=goal_id, status=GoalStatus.SUCCEEDED, answer=answer)


def stalled_turns(connection: Connection, *, stale_s: float) -> list[tuple[uuid.UUID, int]]:
    """Running ReAct goals whose steps have all finished, the last one more than
    ``stale_s`` seconds ago, with no turn under way (its ``react_turn`` message was
    lost): ``(goal_id, next turn)`` each, to publish."""
    s = steps.alias("s")
    last_finished = (select(func.max(s.c.finished_at)).where(s.c.goal_id == goals.c.id)
                     .scalar_subquery())
    rows = connection.execute(
        select(goals.c.id, _last_step_id(goals.c.id).label("last"))
        .where(and_(goals.c.status == GoalStatus.RUNNING.value,
                    goals.c.mode == GoalMode.REACT.value,
                    ~_unfinished(goals.c.id),
                    last_finished < func.now() - timedelta(seconds=stale_s)))
    ).all()
    return [(row.id, int(row.last) + 1) for row in rows]
