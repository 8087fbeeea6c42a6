"""What the planner takes from memory: the goal's session history, similar successful
episodes of its tenant as examples, and an earlier plan to reuse.

Reuse (see ``docs/architecture.md``, "Memory"): a goal with no session history whose
template (:mod:`shared.memory.templates`) equals that of a reusable episode of the same
tenant runs that episode's plan with the entities substituted, after the same
validation as any plan, and without a planning call. Any doubt falls back to planning.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from shared.domain.models import Plan
from shared.errors import PlanInvalidError
from shared.memory.templates import carry_over, template_of
from shared.persistence import episode_index
from shared.persistence import retry as db_retry
from shared.persistence import sessions as session_store
from shared.settings import get_settings

log = logging.getLogger(__name__)


def session_history(goal_id: uuid.UUID) -> dict[str, Any] | None:
    """The goal's session history for its prompts, or None (no session, or nothing
    earlier in it)."""
    recent = get_settings().session_history_goals
    return db_retry.run(
        lambda c: session_store.history_for_goal(c, goal_id=goal_id, recent=recent),
        transactional=False)


def examples(goal_id: uuid.UUID, goal: dict[str, Any]) -> list[dict[str, Any]]:
    """Up to ``MEMORY_EXAMPLES`` successful episodes of the goal's tenant most similar
    to it (full-text rank), for the planner's data section."""
    limit = get_settings().memory_examples
    if limit <= 0:
        return []
    return db_retry.run(
        lambda c: episode_index.similar_episodes(c, tenant_id=goal["tenant_id"],
                                                 text=goal["text"], exclude=goal_id,
                                                 limit=limit),
        transactional=False)


def reuse_plan(goal_id: uuid.UUID, goal: dict[str, Any], *,
               check: Callable[[dict[str, Any]], Plan]) -> tuple[Plan, uuid.UUID] | None:
    """An earlier plan of the same tenant carried over to this goal and validated, with
    the goal it came from; None when reuse is off or nothing fits.

    Candidates are the newest reusable episodes with the goal's template; for each the
    entities are substituted (:func:`shared.memory.templates.carry_over`) and the plan
    validated by ``check`` (the planner's own validation). The first that passes wins;
    a candidate that fails is logged and the next tried.
    """
    settings = get_settings()
    if not settings.plan_reuse_enabled:
        return None
    target = template_of(goal["text"])
    if target.words < settings.plan_reuse_min_template_words:
        return None
    candidates = db_retry.run(
        lambda c: episode_index.find_reusable(c, tenant_id=goal["tenant_id"],
                                             template=target.text, provider=goal["provider"],
                                             model=goal["model"], exclude=goal_id,
                                             max_age_days=settings.plan_reuse_max_age_days),
        transactional=False)
    for candidate in candidates:
        try:
            raw, why = carry_over(template_of(candidate["text"]), candidate["text"], target,
                                  candidate["plan"] or {})
            if raw is None:
                log.info("goal %s: plan of goal %s not reused: %s", goal_id,
                         candidate["goal_id"], why)
                continue
            return check(raw), candidate["goal_id"]
        except PlanInvalidError as exc:
            log.info("goal %s: reused plan of goal %s rejected by validation (%s); "
                     "planning instead", goal_id, candidate["goal_id"], exc.reason)
        except (ValueError, TypeError, RecursionError):
            log.warning("goal %s: carrying over the plan of goal %s failed", goal_id,
                        candidate["goal_id"], exc_info=True)
    return None
