"""Submitting goals and reading them back: used by the gateway and the CLI alike."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import text

from shared import constants
from shared.celery_app import send
from shared.config import get_settings
from shared.domain.models import GoalRequest, Goal
from shared.domain.validation import validate_plan
from shared.errors import ConfigurationError
from shared.llm.providers import KNOWN_PROVIDERS, get_provider
from shared.persistence import goals as goal_store
from shared.persistence.db import get_engine
from shared.tools.registry import default_registry


def check_plan(raw: dict) -> None:
    """Validate a ready-made plan with this deployment's tools and caps.

    Raises:
        PlanInvalidError: The plan breaks a rule.
    """
    settings = get_settings()
    validate_plan(raw, registry=default_registry(), max_steps=settings.max_plan_steps,
                  max_fan_out=settings.max_fan_out)


def submit_goal(request: GoalRequest, *, check: bool = True) -> uuid.UUID:
    """Store a goal (``pending``) and enqueue ``plan_goal`` for it.

    The row is committed before the message is published, so a worker never receives
    an id it cannot find; a goal whose message was lost stays ``pending`` and is
    re-enqueued by the reconciler.

    Args:
        request: The goal.
        check: Validate a ready-made plan here, so that a bad one is refused before
            anything is stored (the worker validates it again either way).

    Raises:
        ConfigurationError: The request names an unknown provider.
        PlanInvalidError: ``check`` is set and the ready-made plan is invalid.
    """
    if check and request.plan is not None:
        check_plan(request.plan)
    provider_name = request.provider or get_settings().default_provider
    if provider_name not in KNOWN_PROVIDERS:
        raise ConfigurationError(
            f"unknown provider {provider_name!r} (available: {', '.join(KNOWN_PROVIDERS)})"
        )
    provider = get_provider(provider_name)
    model = request.model or (
        get_settings().default_model if provider_name == get_settings().default_provider
        else provider.default_model
    )
    with get_engine().begin() as connection:
        goal_id = goal_store.create_goal(
            connection,
            text_=request.goal,
            provider=provider_name,
            model=model,
            metadata=request.metadata,
            requested_plan=request.plan,
        )
    send(constants.PLAN_GOAL, str(goal_id))
    return goal_id


def get_goal(goal_id: uuid.UUID) -> Goal:
    """The goal's current view. Raises GoalNotFoundError if there is none."""
    with get_engine().connect() as connection:
        return goal_store.get_goal_view(connection, goal_id=goal_id)


def goal_statuses(goal_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Current status of each goal, in one query."""
    with get_engine().connect() as connection:
        rows = connection.execute(
            text("SELECT id, status FROM goals WHERE id = ANY(:ids)"),
            {"ids": list(goal_ids)},
        ).all()
    return {row.id: row.status for row in rows}
