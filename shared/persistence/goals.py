"""Goal-level queries: submit, plan, finish, show, and episodes.

Every function takes an open ``Connection`` inside a transaction (``engine.begin()``)
and commits nothing itself, so callers decide what is atomic.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from shared.domain.models import (
    Episode,
    Goal,
    GoalStatus,
    LLMCallRecord,
    Plan,
    StepRun,
    StepState,
    StepStatus,
)
from shared.errors import GoalNotFoundError
from shared.llm.base import Usage
from shared.persistence.tables import goals, llm_calls, plans, steps


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
) -> tuple[uuid.UUID, str | None]:
    """Insert a goal in status ``pending``.

    With an ``idempotency_key`` already stored, nothing is inserted (the unique
    constraint decides between concurrent submissions) and the stored goal is returned.

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
        )
        .on_conflict_do_nothing(constraint="uq_goals_idempotency_key")
        .returning(goals.c.id)
    ).scalar()
    if inserted is not None:
        return inserted, None
    row = connection.execute(
        text("SELECT id, request_sha256 FROM goals WHERE idempotency_key = :key"),
        {"key": idempotency_key},
    ).one()
    return row.id, row.request_sha256 or ""


def delete_pending_goal(connection: Connection, *, goal_id: uuid.UUID) -> None:
    """Remove a goal that was stored but never enqueued (its publish failed)."""
    connection.execute(
        text("DELETE FROM goals WHERE id = :id AND status = 'pending'"), {"id": goal_id}
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
    row = connection.execute(
        text(
            """
            UPDATE goals SET status = 'planning', updated_at = now()
            WHERE id = :id AND (status IN ('pending', 'replanning')
                  OR (status = 'planning' AND updated_at < now() - make_interval(secs => :stale)))
            RETURNING id, text, provider, model, plan_version, requested_plan, replans
            """
        ),
        {"id": goal_id, "stale": stale_after_s},
    ).mappings().first()
    return dict(row) if row else None


def lock_goal(connection: Connection, *, goal_id: uuid.UUID) -> str | None:
    """Lock the goal's row until the transaction ends; return its status (None: no goal).

    Every transaction that changes step states of a goal takes this lock first, so their
    decisions about which dependents became ready see each other's commits.
    """
    return connection.execute(
        text("SELECT status FROM goals WHERE id = :id FOR UPDATE"), {"id": goal_id}
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
    if lock_goal(connection, goal_id=goal_id) != GoalStatus.PLANNING.value:
        return None
    version, queued_at = connection.execute(
        text(
            "UPDATE goals SET status = 'running', plan_version = plan_version + 1, "
            "updated_at = now() WHERE id = :id RETURNING plan_version, now()"
        ),
        {"id": goal_id},
    ).one()
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


def begin_replan(connection: Connection, *, goal_id: uuid.UUID, max_replans: int) -> bool:
    """Move a running goal with replans left (its own ``max_replans``, else the given
    default ``max_replans``) to ``replanning`` and
    skip the steps of its plan that had not started. Returns False (nothing changed) if
    the goal was not running or has no replan left."""
    moved = connection.execute(
        text("UPDATE goals SET status = 'replanning', replans = replans + 1, "
             "updated_at = now() WHERE id = :id AND status = 'running' "
             "AND replans < coalesce(max_replans, :max_replans)"),
        {"id": goal_id, "max_replans": max_replans},
    ).rowcount
    if moved:
        connection.execute(
            text("UPDATE steps SET status = 'skipped' WHERE goal_id = :id "
                 "AND status IN ('pending', 'queued')"),
            {"id": goal_id},
        )
    return bool(moved)


def defer_planning(connection: Connection, *, goal_id: uuid.UUID) -> bool:
    """Give a goal being planned back (``pending``, or ``replanning`` for a replan), so a
    later ``plan_goal`` takes it; used when a rate limit refused the planning call."""
    return bool(connection.execute(
        text("UPDATE goals SET status = CASE WHEN plan_version > 0 THEN 'replanning' "
             "ELSE 'pending' END, updated_at = now() WHERE id = :id AND status = 'planning'"),
        {"id": goal_id},
    ).rowcount)


def replan_context(connection: Connection, *, goal_id: uuid.UUID) -> dict[str, Any]:
    """What a replanning call needs: the steps that succeeded (reusable by id), the
    steps that failed with their errors, and the first free step id."""
    rows = connection.execute(
        text("SELECT step_id, kind, tool, args, status, result, error FROM steps "
             "WHERE goal_id = :id ORDER BY step_id"),
        {"id": goal_id},
    ).mappings().all()
    return {
        "completed": [
            {"id": r["step_id"], "kind": r["kind"], "tool": r["tool"], "args": r["args"],
             "output": r["result"]}
            for r in rows if r["status"] == "succeeded"
        ],
        "failed": [
            {"id": r["step_id"], "kind": r["kind"], "tool": r["tool"], "args": r["args"],
             "error": r["error"]}
            for r in rows if r["status"] == "failed"
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
        text(
            """
            UPDATE goals SET status = :status, answer = :answer, error = :error,
                   finished_at = now(), updated_at = now()
            WHERE id = :id AND status NOT IN ('succeeded', 'failed', 'cancelled')
            """
        ),
        {"id": goal_id, "status": status.value, "answer": answer, "error": error},
    ).rowcount
    if not updated:
        return False
    connection.execute(
        text(
            "UPDATE steps SET status = 'skipped', lease_owner = NULL, lease_expires_at = NULL "
            "WHERE goal_id = :id AND status IN ('pending', 'queued')"
        ),
        {"id": goal_id},
    )
    write_episode(connection, goal_id=goal_id)
    return True


def record_llm_call(
    connection: Connection,
    *,
    goal_id: uuid.UUID,
    step_id: int | None,
    purpose: str,
    provider: str,
    model: str,
    usage: Usage,
    cost_usd: float,
    latency_s: float,
    simulated: bool,
    error: str | None = None,
) -> None:
    """Store one LLM call with its token usage (tokens), cost (USD) and latency (s)."""
    connection.execute(
        llm_calls.insert().values(
            goal_id=goal_id,
            step_id=step_id,
            purpose=purpose,
            provider=provider,
            model=model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            cost_usd=cost_usd,
            latency_s=latency_s,
            simulated=simulated,
            error=error,
        )
    )


def get_goal_view(connection: Connection, *, goal_id: uuid.UUID) -> Goal:
    """The goal as clients see it: status, steps with timings, answer, token and cost totals.

    Raises:
        GoalNotFoundError: No goal has this id.
    """
    row = connection.execute(
        text(
            """
            SELECT g.*, coalesce(c.input_tokens, 0) AS input_tokens,
                   coalesce(c.output_tokens, 0) AS output_tokens,
                   coalesce(c.cost_usd, 0) AS cost_usd, coalesce(c.simulated, false) AS simulated
            FROM goals g
            LEFT JOIN LATERAL (
                SELECT sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                       sum(cost_usd) AS cost_usd, bool_or(simulated) AS simulated
                FROM llm_calls WHERE goal_id = g.id
            ) c ON true
            WHERE g.id = :id
            """
        ),
        {"id": goal_id},
    ).mappings().first()
    if row is None:
        raise GoalNotFoundError(f"no goal with id {goal_id}")
    step_rows = connection.execute(
        text("SELECT * FROM steps WHERE goal_id = :id ORDER BY step_id"), {"id": goal_id}
    ).mappings().all()
    return Goal(
        id=row["id"],
        goal=row["text"],
        status=row["status"],
        provider=row["provider"],
        model=row["model"],
        metadata=row["metadata"],
        answer=row["answer"],
        error=row["error"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        tokens=int(row["input_tokens"]) + int(row["output_tokens"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cost_usd=float(row["cost_usd"]),
        simulated=row["simulated"] or row["provider"] == "sim",
        steps=[
            StepState(
                id=s["step_id"],
                kind=s["kind"],
                tool=s["tool"],
                args=s["args"],
                dependencies=list(s["depends_on"]),
                plan_version=s["plan_version"],
                status=s["status"],
                attempt=s["attempt"],
                started_at=s["started_at"],
                finished_at=s["finished_at"],
                result=s["result"],
                error=s["error"],
            )
            for s in step_rows
        ],
    )


def build_episode(connection: Connection, *, goal_id: uuid.UUID) -> Episode:
    """Assemble the goal's episode: goal, plan, step runs, LLM calls and totals."""
    view = get_goal_view(connection, goal_id=goal_id)
    plan_json = connection.execute(
        text("SELECT plan FROM plans WHERE goal_id = :id ORDER BY version DESC LIMIT 1"),
        {"id": goal_id},
    ).scalar()
    runs = connection.execute(
        text(
            "SELECT step_id, attempt, worker, started_at, finished_at, outcome, error "
            "FROM step_runs WHERE goal_id = :id ORDER BY id"
        ),
        {"id": goal_id},
    ).mappings().all()
    calls = connection.execute(
        text(
            "SELECT purpose, step_id, provider, model, input_tokens, output_tokens, cost_usd, "
            "latency_s, simulated, created_at FROM llm_calls WHERE goal_id = :id ORDER BY id"
        ),
        {"id": goal_id},
    ).mappings().all()
    return Episode(
        goal=view,
        plan=Plan.model_validate(plan_json) if plan_json else None,
        runs=[StepRun.model_validate(dict(r)) for r in runs],
        llm_calls=[
            LLMCallRecord.model_validate({**c, "cost_usd": float(c["cost_usd"])}) for c in calls
        ],
        total_tokens=view.tokens,
        total_cost_usd=view.cost_usd,
    )


def write_episode(connection: Connection, *, goal_id: uuid.UUID) -> None:
    """Store the goal's episode once (a second call keeps the first)."""
    episode = build_episode(connection, goal_id=goal_id)
    connection.execute(
        text(
            "INSERT INTO episodes (goal_id, episode) VALUES (:id, CAST(:episode AS jsonb)) "
            "ON CONFLICT (goal_id) DO NOTHING"
        ),
        {"id": goal_id, "episode": episode.model_dump_json()},
    )
