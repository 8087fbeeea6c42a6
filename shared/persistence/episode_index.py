"""The episode index: every finished goal, searchable by text and by template, so the
planner can show similar successful episodes as examples and reuse a plan.

Written in the transaction that ends the goal (beside its episode, see
:func:`shared.persistence.goals.finish_goal`); read only with a tenant id, so one
tenant's episodes never reach another's prompts. Functions take an open ``Connection``
and commit nothing themselves.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from shared.domain.models import GoalMode, GoalStatus
from shared.memory.templates import template_of
from shared.persistence.session_tables import episode_index
from shared.persistence.sessions import history_for_goal
from shared.persistence.tables import goals, plans

MAX_QUERY_WORDS = 32  # words of a goal that make up its full-text query


def index_episode(connection: Connection, *, goal_id: uuid.UUID) -> None:
    """Index the finished goal ``goal_id`` once (a second call keeps the first).

    Its plan is marked reusable when the goal succeeded with its first plan, that plan
    came from a planner (not from the request) and the goal had no session context
    (a plan written with a session's earlier answers in view may hold them).
    """
    goal = connection.execute(
        select(goals.c.text, goals.c.tenant_id, goals.c.status, goals.c.answer,
               goals.c.plan_version, goals.c.requested_plan)
        .where(goals.c.id == goal_id)
    ).first()
    if goal is None:
        return
    plan = connection.execute(
        select(plans.c.plan).where(plans.c.goal_id == goal_id)
        .order_by(plans.c.version.desc()).limit(1)
    ).scalar()
    template = template_of(goal.text)
    reusable = (goal.status == GoalStatus.SUCCEEDED.value and goal.plan_version == 1
                and goal.requested_plan is None and plan is not None
                and history_for_goal(connection, goal_id=goal_id, recent=1) is None)
    connection.execute(
        pg_insert(episode_index)
        .values(goal_id=goal_id, tenant_id=goal.tenant_id, text=goal.text,
                template=template.text, entities=template.entities, status=goal.status,
                answer=goal.answer, plan=plan, reusable=reusable)
        .on_conflict_do_nothing(index_elements=[episode_index.c.goal_id])
    )


def similar_episodes(connection: Connection, *, tenant_id: uuid.UUID | None, text: str,
                     exclude: uuid.UUID, limit: int) -> list[dict[str, Any]]:
    """The tenant's successful DAG episodes most similar to ``text``, best first (a
    ReAct goal's steps are a record of its actions, with observations written into
    their arguments, not a plan to learn from).

    Similarity is Postgres full-text rank (``ts_rank``) of the episode's goal text
    against any of ``text``'s words (an OR query through ``websearch_to_tsquery``);
    ties go to the newer episode.

    Returns:
        ``[{"goal_id", "text", "plan", "answer"}]``, at most ``limit``.
    """
    words = re.findall(r"[^\W_]+", text)[:MAX_QUERY_WORDS]
    if not words or limit <= 0:
        return []
    query = func.websearch_to_tsquery("english", " or ".join(words))
    rank = func.ts_rank(episode_index.c.tsv, query)
    rows = connection.execute(
        select(episode_index.c.goal_id, episode_index.c.text, episode_index.c.plan,
               episode_index.c.answer)
        .join(goals, goals.c.id == episode_index.c.goal_id)
        .where(episode_index.c.tenant_id == tenant_id,
               episode_index.c.status == GoalStatus.SUCCEEDED.value,
               goals.c.mode == GoalMode.DAG.value,
               episode_index.c.goal_id != exclude,
               episode_index.c.tsv.op("@@")(query))
        .order_by(rank.desc(), episode_index.c.created_at.desc())
        .limit(limit)
    ).mappings().all()
    return [dict(r) for r in rows]


def find_reusable(connection: Connection, *, tenant_id: uuid.UUID | None, template: str,
                  provider: str, model: str, exclude: uuid.UUID, max_age_days: float
                  ) -> list[dict[str, Any]]:
    """The tenant's newest reusable episodes with exactly this template whose goals ran
    on ``provider`` and ``model`` (a plan is reused for goals that asked for the model
    that wrote it) as DAGs (a ReAct goal's actions carry its own observations in their
    arguments: never a plan for another goal), at most 3, newest first, no older than ``max_age_days``.

    Returns:
        ``[{"goal_id", "text", "plan"}]``.
    """
    rows = connection.execute(
        select(episode_index.c.goal_id, episode_index.c.text, episode_index.c.plan)
        .join(goals, goals.c.id == episode_index.c.goal_id)
        .where(episode_index.c.tenant_id == tenant_id,
               episode_index.c.template == template,
               goals.c.provider == provider, goals.c.model == model,
               goals.c.mode == GoalMode.DAG.value,
               episode_index.c.reusable.is_(True),
               episode_index.c.goal_id != exclude,
               episode_index.c.created_at > func.now() - timedelta(days=max_age_days))
        .order_by(episode_index.c.created_at.desc())
        .limit(3)
    ).mappings().all()
    return [dict(r) for r in rows]


def planning_figures(connection: Connection, *, goal_ids: list[uuid.UUID]
                     ) -> dict[uuid.UUID, dict[str, Any]]:
    """Per goal, what ``taskforce bench memory`` compares: its status and answer,
    the goal it reused a plan from, its planning calls, and the seconds from its
    submission to its first plan being stored (``plans.created_at`` of version 1 minus
    ``goals.created_at``; planning calls, reuse lookups and queueing included).

    Returns:
        ``{goal_id: {"status", "answer", "reused_plan_from", "plan_calls",
        "to_plan_s"}}`` (``to_plan_s`` None for a goal never planned).
    """
    from shared.persistence.tables import llm_calls

    calls = (select(func.count()).where(llm_calls.c.goal_id == goals.c.id,
                                        llm_calls.c.purpose == "plan")
             .scalar_subquery())
    first_plan = (select(plans.c.created_at)
                  .where(plans.c.goal_id == goals.c.id, plans.c.version == 1)
                  .scalar_subquery())
    rows = connection.execute(
        select(goals.c.id, goals.c.status, goals.c.answer, goals.c.reused_plan_from,
               calls.label("plan_calls"),
               func.extract("epoch", first_plan - goals.c.created_at).label("to_plan_s"))
        .where(goals.c.id.in_(goal_ids))
    ).mappings().all()
    return {r["id"]: {"status": r["status"], "answer": r["answer"],
                      "reused_plan_from": r["reused_plan_from"],
                      "plan_calls": int(r["plan_calls"]),
                      "to_plan_s": None if r["to_plan_s"] is None else float(r["to_plan_s"])}
            for r in rows}
