"""Running the reconciler: one pass in a transaction, then the publishing it decided."""

from __future__ import annotations

import logging
from collections import defaultdict

from shared.messages import publish_plan, publish_react_turn, publish_steps
from shared.persistence import retry as db_retry
from shared.persistence.reconcile import Repairs, reconcile
from shared.settings import get_settings
from shared.telemetry import goal_trace, instruments

log = logging.getLogger(__name__)


def run_once() -> Repairs:
    """Reconcile once and publish what it found; returns what was repaired.

    Publishing failures are logged and left for the next pass (the state that asks for
    them is still in Postgres).
    """
    settings = get_settings()
    repairs = db_retry.run(
        lambda c: reconcile(c, stale_s=settings.reconcile_stale_s,
                            planning_stale_s=settings.planning_stale_s,
                            max_attempts=settings.step_max_attempts,
                            approval_timeout_s=settings.approval_timeout_s)
    )
    by_goal: dict = defaultdict(list)
    for goal_id, step_id, kind in repairs.steps_to_publish:
        by_goal[goal_id].append((step_id, kind))
    # Each re-publish continues its goal's trace (from the traceparent on its row).
    contexts = goal_trace.traceparents({*by_goal, *repairs.goals_to_plan})
    for goal_id, steps in by_goal.items():
        with goal_trace.resumed(contexts.get(goal_id), goal_id, "reconciler republish"):
            publish_steps(goal_id, steps)
    for goal_id in repairs.goals_to_plan:
        try:
            with goal_trace.resumed(contexts.get(goal_id), goal_id, "reconciler replan"):
                publish_plan(goal_id)
        except Exception:
            log.warning("re-publishing plan_goal for %s failed", goal_id, exc_info=True)
    for goal_id, turn in repairs.react_turns:
        publish_react_turn(goal_id, turn)
    counts = repairs.as_dict()
    instruments.record_repairs(counts)
    if any(v for k, v in counts.items() if k != "locked"):
        log.info("reconciler: %s", counts)
    return repairs
