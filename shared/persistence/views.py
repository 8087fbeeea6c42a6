"""Read models: the goal as clients see it, and its episode (the record kept when it
ends).

Every function takes an open ``Connection``; queries are SQLAlchemy Core expressions on
``shared.persistence.tables``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from shared.domain.limits import InputLimitError, check_json_value
from shared.domain.models import (
    Episode,
    Goal,
    LLMCallRecord,
    Plan,
    StepApproval,
    StepRun,
    StepState,
    StepStatus,
)
from shared.errors import GoalNotFoundError
from shared.persistence.tables import episodes, goals, llm_calls, plans, step_runs, steps

log = logging.getLogger(__name__)

# Deepest stored JSON shown as it is (levels). Input limits keep new rows far shallower;
# this keeps a row stored before them (or a tool's odd output) from breaking the view:
# pydantic refuses to serialize past about 255 levels.
VIEW_MAX_DEPTH = 100


def _shown(value: Any, where: str) -> Any:
    """``value`` if it can be shown, else ``{"unreadable": <why>}`` (never raises)."""
    try:
        return check_json_value(value, max_depth=VIEW_MAX_DEPTH, where=where)
    except InputLimitError as exc:
        return {"unreadable": str(exc)}


def get_goal_view(connection: Connection, *, goal_id: uuid.UUID) -> Goal:
    """The goal as clients see it: status, steps with timings, answer, token and cost totals.

    Raises:
        GoalNotFoundError: No goal has this id.
    """
    totals = (
        select(
            func.coalesce(func.sum(llm_calls.c.input_tokens), 0).label("input_tokens"),
            func.coalesce(func.sum(llm_calls.c.output_tokens), 0).label("output_tokens"),
            func.coalesce(func.sum(llm_calls.c.cost_usd), 0).label("cost_usd"),
            func.coalesce(func.bool_or(llm_calls.c.simulated), False).label("simulated"),
        )
        .where(llm_calls.c.goal_id == goals.c.id)
        .lateral("totals")
    )
    row = connection.execute(
        select(goals, totals).select_from(goals.join(totals, true())).where(goals.c.id == goal_id)
    ).mappings().first()
    if row is None:
        raise GoalNotFoundError(f"no goal with id {goal_id}")
    step_rows = connection.execute(
        select(steps).where(steps.c.goal_id == goal_id).order_by(steps.c.step_id)
    ).mappings().all()
    return Goal(
        id=row["id"],
        goal=row["text"],
        status=row["status"],
        provider=row["provider"],
        model=row["model"],
        metadata=_shown(row["metadata"], "metadata"),
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
                args=_shown(s["args"], "args"),
                dependencies=list(s["depends_on"]),
                plan_version=s["plan_version"],
                status=s["status"],
                attempt=s["attempt"],
                started_at=s["started_at"],
                finished_at=s["finished_at"],
                result=_shown(s["result"], "result"),
                error=s["error"],
                approval=_approval(s),
            )
            for s in step_rows
        ],
        awaiting_approval=[s["step_id"] for s in step_rows
                           if s["status"] == StepStatus.AWAITING_APPROVAL.value],
        mode=row["mode"],
        trace_id=row["trace_id"],
        session_id=row["session_id"],
        reused_plan_from=row["reused_plan_from"],
    )


def _approval(step: Mapping[str, Any]) -> StepApproval | None:
    """The step's approval state, or None for a step that never asked for approval."""
    if step["approval_requested_at"] is None and step["approval"] is None:
        return None
    return StepApproval(requested_at=step["approval_requested_at"], decision=step["approval"],
                        by=step["approval_by"], at=step["approval_at"],
                        reason=step["approval_reason"])


def build_episode(connection: Connection, *, goal_id: uuid.UUID) -> Episode:
    """Assemble the goal's episode: goal, plan, step runs, LLM calls and totals."""
    view = get_goal_view(connection, goal_id=goal_id)
    plan_json = connection.execute(
        select(plans.c.plan).where(plans.c.goal_id == goal_id)
        .order_by(plans.c.version.desc()).limit(1)
    ).scalar()
    runs = connection.execute(
        select(step_runs.c.step_id, step_runs.c.attempt, step_runs.c.worker,
               step_runs.c.started_at, step_runs.c.finished_at, step_runs.c.outcome,
               step_runs.c.error)
        .where(step_runs.c.goal_id == goal_id).order_by(step_runs.c.id)
    ).mappings().all()
    calls = connection.execute(
        select(llm_calls.c.purpose, llm_calls.c.step_id, llm_calls.c.provider,
               llm_calls.c.model, llm_calls.c.input_tokens, llm_calls.c.output_tokens,
               llm_calls.c.cost_usd, llm_calls.c.latency_s, llm_calls.c.simulated,
               llm_calls.c.created_at)
        .where(llm_calls.c.goal_id == goal_id).order_by(llm_calls.c.id)
    ).mappings().all()
    try:
        plan = Plan.model_validate(plan_json) if plan_json else None
    except ValidationError:  # stored before today's limits: the episode keeps the rest
        log.warning("the stored plan of goal %s no longer validates", goal_id)
        plan = None
    return Episode(
        goal=view,
        plan=plan,
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
        pg_insert(episodes)
        .values(goal_id=goal_id, episode=episode.model_dump(mode="json"))
        .on_conflict_do_nothing(index_elements=[episodes.c.goal_id])
    )
