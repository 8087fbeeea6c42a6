"""Goal lifecycle in SQL: submit, plan, replan, finish, and the statuses clients poll.

Every function takes an open ``Connection`` inside a transaction (``engine.begin()``)
and commits nothing itself, so callers decide what is atomic. Status values come from
``GoalStatus`` and ``StepStatus``; queries are SQLAlchemy Core expressions on
``shared.persistence.tables``. What clients see of a goal is built in
``shared.persistence.views``; LLM call records live in ``shared.persistence.llm_calls``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from shared.domain.models import GoalStatus, Plan, StepStatus
from shared.persistence.episode_index import index_episode
from shared.persistence.tables import goals, plans, steps
from shared.persistence.views import write_episode
from shared.telemetry import goal_trace

# The statuses a goal never leaves, and the steps a goal's end (or a replan) skips (a
# step awaiting approval has not run).
FINAL_GOAL_STATUSES = tuple(s.value for s in GoalStatus if s.is_final)
UNSTARTED_STEP_STATUSES = (StepStatus.PENDING.value, StepStatus.QUEUED.value,
                           StepStatus.AWAITING_APPROVAL.value)


def create_goal(
    connection: Connection,
    *,
    text_: str,
    provider: str,
    model: str,
    metadata: dict[str, Any],
    requested_plan: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    request_sha256: str | None = None,
    max_tokens: int | None = None,
    max_cost_usd: float | None = None,
    max_replans: int | None = None,
    tenant_id: uuid.UUID | None = None,
    mode: str = "dag",
    trace_id: str | None = None,
    traceparent: str | None = None,
    batch_id: uuid.UUID | None = None,
    session_id: str | None = None,
) -> tuple[uuid.UUID, str | None]:
    """Insert a goal in status ``pending``, owned by ``tenant_id``, run in ``mode``
    (``dag`` or ``react``), part of the batch ``batch_id`` if given.

    With an ``idempotency_key`` the tenant already used, nothing is inserted (the unique
    constraint decides between concurrent submissions) and the stored goal is returned.

    ``trace_id`` and ``traceparent`` name the trace the goal runs in (None: tracing off).

    Returns:
        ``(goal_id, None)`` for a new goal, or ``(existing_goal_id, its request_sha256)``
        when the key was already used.
    """
    goal_id = uuid.uuid4()
    inserted = connection.execute(
        pg_insert(goals)
        .values(
            id=goal_id,
            text=text_,
            status=GoalStatus.PENDING.value,
            provider=provider,
            model=model,
            metadata=metadata,
            requested_plan=requested_plan,
            idempotency_key=idempotency_key,
            request_sha256=request_sha256,
            max_tokens=max_tokens,
            max_cost_usd=max_cost_usd,
            max_replans=max_replans,
            tenant_id=tenant_id,
            mode=mode,
            trace_id=trace_id,
            traceparent=traceparent,
            batch_id=batch_id,
            session_id=session_id,
        )
        .on_conflict_do_nothing(constraint="uq_goals_tenant_idempotency_key")
        .returning(goals.c.id)
    ).scalar()
    if inserted is not None:
        return inserted, None
    row = connection.execute(
        select(goals.c.id, goals.c.request_sha256)
        .where(goals.c.idempotency_key == idempotency_key, goals.c.tenant_id == tenant_id)
    ).one()
    return row.id, row.request_sha256 or ""


def owned_by(connection: Connection, *, goal_id: uuid.UUID, tenant_id: uuid.UUID,
             legacy_owner: uuid.UUID | None = None) -> bool:
    """True if the goal exists and belongs to ``tenant_id``; goals stored before tenants
    existed (no owner) count as ``legacy_owner``'s."""
    owner = goals.c.tenant_id == tenant_id
    if legacy_owner == tenant_id:
        owner = owner | goals.c.tenant_id.is_(None)
    return connection.execute(
        select(goals.c.id).where(goals.c.id == goal_id, owner)
    ).first() is not None


def delete_pending_goal(connection: Connection, *, goal_id: uuid.UUID) -> None:
    """Remove a goal that was stored but never enqueued (its publish failed)."""
    connection.execute(
        delete(goals).where(goals.c.id == goal_id, goals.c.status == GoalStatus.PENDING.value)
    )


def claim_goal_for_planning(
    connection: Connection, *, goal_id: uuid.UUID, stale_after_s: float
) -> dict[str, Any] | None:
    """Move a goal from ``pending`` or ``replanning`` to ``planning``; return its row, or
    None.

    A goal already ``planning`` is taken over only when it has not moved for
    ``stale_after_s`` seconds (its planner crashed), so a second delivery of the same
    ``plan_goal`` message while the first is planning does nothing.
    """
    stale = goals.c.updated_at < func.now() - timedelta(seconds=stale_after_s)
    row = connection.execute(
        update(goals)
        .where(
            goals.c.id == goal_id,
            goals.c.status.in_([GoalStatus.PENDING.value, GoalStatus.REPLANNING.value])
            | ((goals.c.status == GoalStatus.PLANNING.value) & stale),
        )
        .values(status=GoalStatus.PLANNING.value, updated_at=func.now())
        .returning(goals.c.id, goals.c.text, goals.c.provider, goals.c.model,
                   goals.c.plan_version, goals.c.requested_plan, goals.c.replans,
                   goals.c.mode, goals.c.tenant_id)
    ).mappings().first()
    return dict(row) if row else None


def lock_goal(connection: Connection, *, goal_id: uuid.UUID) -> str | None:
    """Lock the goal's row until the transaction ends; return its status (None: no goal).

    Every transaction that changes step states of a goal takes this lock first, so their
    decisions about which dependents became ready see each other's commits.
    """
    return connection.execute(
        select(goals.c.status).where(goals.c.id == goal_id).with_for_update()
    ).scalar()


def start_plan(
    connection: Connection, *, goal_id: uuid.UUID, plan: Plan,
    completed: frozenset[int] = frozenset(),
) -> list[tuple[int, str]] | None:
    """Store ``plan`` and its steps, mark the goal ``running``, and queue the root steps.

    For a replan, ``completed`` holds the steps of earlier plans whose results the new
    plan reuses: a new step whose dependencies are all among them is queued at once.

    Returns:
        ``(step_id, kind)`` of the steps with no dependencies (now ``queued``, to be
        published after the commit), or None when the goal is no longer ``planning``
        (cancelled, or another delivery stored a plan first).
    """
    # The conditional UPDATE takes the goal row lock itself (and, in READ COMMITTED,
    # re-checks the status once it has it): one round trip instead of a SELECT ... FOR
    # UPDATE followed by the UPDATE.
    started = connection.execute(
        update(goals)
        .where(goals.c.id == goal_id, goals.c.status == GoalStatus.PLANNING.value)
        .values(status=GoalStatus.RUNNING.value, plan_version=goals.c.plan_version + 1,
                updated_at=func.now())
        .returning(goals.c.plan_version, func.now())
    ).first()
    if started is None:
        return None
    version, queued_at = started
    connection.execute(
        plans.insert().values(goal_id=goal_id, version=version, plan=plan.model_dump(mode="json"))
    )
    roots = []
    rows = []
    for step in plan.steps:
        deps = sorted(step.dependencies)
        ready = set(deps) <= completed
        if ready:
            roots.append((step.id, step.kind.value))
        rows.append(
            {
                "goal_id": goal_id,
                "step_id": step.id,
                "plan_version": version,
                "kind": step.kind.value,
                "tool": step.tool,
                "args": step.args,
                "depends_on": deps,
                "description": step.description,
                "status": StepStatus.QUEUED.value if ready else StepStatus.PENDING.value,
                "queued_at": queued_at if ready else None,
            }
        )
    connection.execute(steps.insert(), rows)
    return roots


def mark_plan_reused(connection: Connection, *, goal_id: uuid.UUID,
                     source: uuid.UUID) -> None:
    """Record that the goal runs the plan of the earlier goal ``source`` (reused)."""
    connection.execute(update(goals).where(goals.c.id == goal_id)
                       .values(reused_plan_from=source))


def _skip_unstarted_steps(connection: Connection, goal_id: uuid.UUID) -> None:
    connection.execute(
        update(steps)
        .where(steps.c.goal_id == goal_id, steps.c.status.in_(UNSTARTED_STEP_STATUSES))
        .values(status=StepStatus.SKIPPED.value, lease_owner=None, lease_expires_at=None)
    )


def begin_replan(connection: Connection, *, goal_id: uuid.UUID, max_replans: int) -> bool:
    """Move a running goal with replans left (its own ``max_replans``, else the given
    default ``max_replans``) to ``replanning`` and
    skip the steps of its plan that had not started. Returns False (nothing changed) if
    the goal was not running or has no replan left."""
    moved = connection.execute(
        update(goals)
        .where(goals.c.id == goal_id, goals.c.status == GoalStatus.RUNNING.value,
               goals.c.replans < func.coalesce(goals.c.max_replans, max_replans))
        .values(status=GoalStatus.REPLANNING.value, replans=goals.c.replans + 1,
                updated_at=func.now())
    ).rowcount
    if moved:
        _skip_unstarted_steps(connection, goal_id)
    return bool(moved)


def defer_planning(connection: Connection, *, goal_id: uuid.UUID) -> bool:
    """Give a goal being planned back (``pending``, or ``replanning`` for a replan), so a
    later ``plan_goal`` takes it; used when a rate limit refused the planning call."""
    back = case((goals.c.plan_version > 0, GoalStatus.REPLANNING.value),
                else_=GoalStatus.PENDING.value)
    return bool(connection.execute(
        update(goals)
        .where(goals.c.id == goal_id, goals.c.status == GoalStatus.PLANNING.value)
        .values(status=back, updated_at=func.now())
    ).rowcount)


def replan_context(connection: Connection, *, goal_id: uuid.UUID) -> dict[str, Any]:
    """What a replanning call needs: the steps that succeeded (reusable by id), the
    steps that failed with their errors, and the first free step id."""
    rows = connection.execute(
        select(steps.c.step_id, steps.c.kind, steps.c.tool, steps.c.args, steps.c.status,
               steps.c.result, steps.c.error)
        .where(steps.c.goal_id == goal_id)
        .order_by(steps.c.step_id)
    ).mappings().all()
    return {
        "completed": [
            {"id": r["step_id"], "kind": r["kind"], "tool": r["tool"], "args": r["args"],
             "output": r["result"]}
            for r in rows if r["status"] == StepStatus.SUCCEEDED
        ],
        "failed": [
            {"id": r["step_id"], "kind": r["kind"], "tool": r["tool"], "args": r["args"],
             "error": r["error"]}
            for r in rows if r["status"] == StepStatus.FAILED
        ],
        "next_step_id": 1 + max((r["step_id"] for r in rows), default=0),
        "used_step_ids": [r["step_id"] for r in rows],
    }


def finish_goal(
    connection: Connection,
    *,
    goal_id: uuid.UUID,
    status: GoalStatus,
    answer: str | None = None,
    error: str | None = None,
) -> bool:
    """End a goal that is not final yet, skip its unfinished steps, write its episode.

    Returns:
        True if this call ended the goal, False if it had already ended.
    """
    updated = connection.execute(
        update(goals)
        .where(goals.c.id == goal_id, goals.c.status.not_in(FINAL_GOAL_STATUSES))
        .values(status=status.value, answer=answer, error=error, finished_at=func.now(),
                updated_at=func.now())
    ).rowcount
    if not updated:
        return False
    _skip_unstarted_steps(connection, goal_id)
    write_episode(connection, goal_id=goal_id)
    goal_trace.goal_ended(goal_id, status.value, error)
    index_episode(connection, goal_id=goal_id)
    return True


def goal_statuses(connection: Connection, *, goal_ids: Iterable[uuid.UUID]
                  ) -> dict[uuid.UUID, str]:
    """Current status of each of ``goal_ids`` that exists, in one query."""
    rows = connection.execute(
        select(goals.c.id, goals.c.status).where(goals.c.id.in_(list(goal_ids)))
    ).all()
    return {row.id: row.status for row in rows}


def queued_step_ids(connection: Connection, *, goal_id: uuid.UUID) -> list[int]:
    """Numbers of the goal's steps that are ``queued`` (their messages may be in flight)."""
    return list(connection.execute(
        select(steps.c.step_id)
        .where(steps.c.goal_id == goal_id, steps.c.status == StepStatus.QUEUED.value)
    ).scalars())
