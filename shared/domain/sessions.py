"""A session as clients see it (``GET /v1/sessions/{id}``, ``taskforce session show``)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from shared.domain.models import GoalStatus


class SessionGoal(BaseModel):
    """One goal of a session, in the order they were submitted.

    Attributes:
        id: The goal's id.
        goal: Its text.
        status: Its status.
        answer: Its answer, once it succeeded.
        error: Why it failed, if it did.
        reused_plan_from: The earlier goal whose plan it reused, if any.
        in_summary: True when the running summary covers it (older goals).
    """

    id: UUID
    goal: str
    status: GoalStatus
    answer: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    reused_plan_from: UUID | None = None
    in_summary: bool = False


class SessionView(BaseModel):
    """A session's history.

    Attributes:
        id: The session id (per tenant).
        summary: The running summary of its older goals (written by the compaction
            job), or None while the session is short.
        summarized_goals: How many goals the summary covers.
        goals: Its goals, oldest first (at most ``SESSION_VIEW_MAX_GOALS``, the newest).
        total_goals: How many goals the session has in all.
    """

    id: str
    summary: str | None
    summarized_goals: int
    created_at: datetime
    updated_at: datetime
    goals: list[SessionGoal]
    total_goals: int
