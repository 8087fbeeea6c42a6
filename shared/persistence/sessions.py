"""Session memory in SQL: the session row, the history a prompt sees, the session view,
and the queries of the compaction job.

A session belongs to one tenant: every query here is keyed by ``(tenant_id, id)``.
Functions take an open ``Connection`` and commit nothing themselves.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from shared.domain.models import GoalStatus
from shared.domain.sessions import SessionGoal, SessionView
from shared.errors import SessionNotFoundError
from shared.persistence.session_tables import sessions
from shared.persistence.tables import goals

_FINAL = tuple(s.value for s in GoalStatus if s.is_final)


def ensure_session(connection: Connection, *, tenant_id: uuid.UUID, session_id: str) -> None:
    """Create the tenant's session ``session_id`` if it does not exist; touch it."""
    connection.execute(
        pg_insert(sessions).values(tenant_id=tenant_id, id=session_id)
        .on_conflict_do_update(constraint="pk_sessions", set_={"updated_at": func.now()})
    )


def _session_row(connection: Connection, tenant_id: uuid.UUID | None,
                 session_id: str) -> Any:
    return connection.execute(
        select(sessions).where(sessions.c.tenant_id == tenant_id, sessions.c.id == session_id)
    ).mappings().first()


def history_for_goal(connection: Connection, *, goal_id: uuid.UUID, recent: int
                     ) -> dict[str, Any] | None:
    """What the goal's prompts see of its session: the running summary and the most
    recent earlier goals not in it.

    Args:
        goal_id: The goal being planned or synthesized.
        recent: Most earlier goals listed one by one (the newest, oldest first).

    Returns:
        ``{"id": str, "summary": str | None, "recent": [{"goal": str, "status": str,
        "answer": str | None, "error": str | None}, ...]}`` (texts uncut: the role cuts
        them), or None when the goal has no session or the session nothing earlier.
    """
    goal = connection.execute(
        select(goals.c.tenant_id, goals.c.session_id, goals.c.created_at)
        .where(goals.c.id == goal_id)
    ).first()
    if goal is None or goal.session_id is None:
        return None
    row = _session_row(connection, goal.tenant_id, goal.session_id)
    through = row["summarized_through"] if row else None
    earlier = and_(goals.c.tenant_id == goal.tenant_id,
                   goals.c.session_id == goal.session_id,
                   goals.c.created_at < goal.created_at, goals.c.id != goal_id)
    if through is not None:
        earlier = and_(earlier, goals.c.created_at > through)
    rows = connection.execute(
        select(goals.c.text, goals.c.status, goals.c.answer, goals.c.error)
        .where(earlier).order_by(goals.c.created_at.desc()).limit(recent)
    ).all() if recent > 0 else []
    summary = row["summary"] if row else None
    if not rows and not summary:
        return None
    return {
        "id": goal.session_id,
        "summary": summary,
        "recent": [{"goal": r.text, "status": r.status, "answer": r.answer, "error": r.error}
                   for r in reversed(rows)],
    }


def session_view(connection: Connection, *, tenant_id: uuid.UUID | None, session_id: str,
                 max_goals: int) -> SessionView:
    """The tenant's session with its newest ``max_goals`` goals, oldest first.

    Raises:
        SessionNotFoundError: The tenant has no such session.
    """
    row = _session_row(connection, tenant_id, session_id)
    if row is None:
        raise SessionNotFoundError(f"no session with id {session_id}")
    mine = and_(goals.c.tenant_id == tenant_id, goals.c.session_id == session_id)
    total = connection.execute(select(func.count()).where(mine)).scalar_one()
    rows = connection.execute(
        select(goals.c.id, goals.c.text, goals.c.status, goals.c.answer, goals.c.error,
               goals.c.created_at, goals.c.finished_at, goals.c.reused_plan_from)
        .where(mine).order_by(goals.c.created_at.desc()).limit(max_goals)
    ).all()
    through = row["summarized_through"]
    return SessionView(
        id=session_id, summary=row["summary"], summarized_goals=row["summarized_goals"],
        created_at=row["created_at"], updated_at=row["updated_at"], total_goals=total,
        goals=[SessionGoal(id=r.id, goal=r.text, status=r.status, answer=r.answer,
                           error=r.error, created_at=r.created_at, finished_at=r.finished_at,
                           reused_plan_from=r.reused_plan_from,
                           in_summary=through is not None and r.created_at <= through)
               for r in reversed(rows)],
    )


def sessions_to_compact(connection: Connection, *, keep_recent: int, min_goals: int,
                        limit: int) -> list[dict[str, Any]]:
    """Sessions with at least ``min_goals`` goals older than their ``keep_recent``
    newest and not yet in their summary (oldest activity first, at most ``limit``).

    Returns:
        ``[{"tenant_id", "id", "summary", "summarized_through", "summarized_goals"}]``.
    """
    rank = func.row_number().over(
        partition_by=(goals.c.tenant_id, goals.c.session_id),
        order_by=goals.c.created_at.desc()).label("rank")
    ranked = (select(goals.c.tenant_id, goals.c.session_id, goals.c.created_at, rank)
              .where(goals.c.session_id.is_not(None)).subquery())
    folded = or_(sessions.c.summarized_through.is_(None),
                 ranked.c.created_at > sessions.c.summarized_through)
    rows = connection.execute(
        select(sessions.c.tenant_id, sessions.c.id, sessions.c.summary,
               sessions.c.summarized_through, sessions.c.summarized_goals)
        .join(ranked, and_(ranked.c.tenant_id == sessions.c.tenant_id,
                           ranked.c.session_id == sessions.c.id))
        .where(ranked.c.rank > keep_recent, folded)
        .group_by(sessions.c.tenant_id, sessions.c.id)
        .having(func.count() >= min_goals)
        .order_by(sessions.c.updated_at)
        .limit(limit)
    ).mappings().all()
    return [dict(r) for r in rows]


MAX_FOLDED_GOALS = 50  # most goals one summarize call folds in (the next pass goes on)


def goals_to_fold(connection: Connection, *, session: dict[str, Any], keep_recent: int
                  ) -> list[dict[str, Any]]:
    """The session's goals the next summary folds in: those after its summary and older
    than its ``keep_recent`` newest, oldest first, up to the first one still running
    (the summary only ever moves forward over finished goals), at most
    :data:`MAX_FOLDED_GOALS`."""
    after = (goals.c.created_at > session["summarized_through"]
             if session["summarized_through"] is not None else True)
    rows = connection.execute(
        select(goals.c.id, goals.c.text, goals.c.status, goals.c.answer, goals.c.error,
               goals.c.created_at, goals.c.provider, goals.c.model)
        .where(goals.c.tenant_id == session["tenant_id"], goals.c.session_id == session["id"],
               after)
        .order_by(goals.c.created_at.desc()).offset(keep_recent)
    ).mappings().all()
    folded = []
    for r in reversed(rows):
        if r["status"] not in _FINAL:
            break
        folded.append(dict(r))
    return folded[:MAX_FOLDED_GOALS]


def save_summary(connection: Connection, *, session: dict[str, Any], summary: str,
                 through: datetime, goals_added: int) -> bool:
    """Store a new summary covering the goals up to ``through``, only if no other pass
    moved the summary meanwhile (compare-and-set on ``summarized_through``).

    Returns:
        True if stored.
    """
    before = sessions.c.summarized_through
    unchanged = (before.is_(None) if session["summarized_through"] is None
                 else before == session["summarized_through"])
    return bool(connection.execute(
        update(sessions)
        .where(sessions.c.tenant_id == session["tenant_id"], sessions.c.id == session["id"],
               unchanged)
        .values(summary=summary, summarized_through=through,
                summarized_goals=sessions.c.summarized_goals + goals_added,
                updated_at=func.now())
    ).rowcount)
