"""The planner: turn a goal into a validated plan (a DAG of steps) and start it.

``plan_goal`` runs once per goal and again for each replan. The goal's LLM proposes the
plan through the ``plan`` role (:mod:`shared.llm.roles`), seeing the goal's session
history and similar successful episodes of its tenant (:mod:`worker.memory`); a
ready-made plan from the request is taken as is, and an earlier plan of the same
template may be reused without a planning call (``docs/architecture.md``, "Memory").
Whatever its source, the plan is validated before anything is stored, an invalid LLM
answer gets one repair attempt, and the steps that can start are published only after
the plan commits.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from shared.domain.models import GoalMode, GoalStatus, Plan
from shared.domain.validation import validate_plan
from shared.errors import (
    BudgetExceededError,
    MalformedOutputError,
    PlanInvalidError,
    RateLimitedError,
    TaskforceError,
)
from shared.llm import roles
from shared.messages import publish_plan, publish_steps
from shared.persistence import goals as goal_store
from shared.persistence import retry as db_retry
from shared.settings import get_settings
from worker import memory
from worker.metering import metered_call
from worker.process_state import registry
from worker.react import take_turn

log = logging.getLogger(__name__)


def _finish(goal_id: uuid.UUID, status: GoalStatus, *, error: str | None = None) -> None:
    def work(connection: Connection) -> None:
        goal_store.lock_goal(connection, goal_id=goal_id)
        goal_store.finish_goal(connection, goal_id=goal_id, status=status, error=error)

    db_retry.run(work)


def _checker(context: dict[str, Any] | None) -> Callable[[dict[str, Any]], Plan]:
    """Plan validation with this worker's tools and caps (and, for a replan, the steps
    of earlier plans the new one may refer to)."""
    settings = get_settings()
    completed = frozenset(c["id"] for c in context["completed"]) if context else frozenset()
    used = frozenset(context["used_step_ids"]) if context else frozenset()

    def check(raw: dict[str, Any]) -> Plan:
        return validate_plan(raw, registry=registry(), max_steps=settings.max_plan_steps,
                             max_fan_out=settings.max_fan_out, completed=completed,
                             used_ids=used)

    return check


def _obtain_plan(
    gid: uuid.UUID, goal: dict[str, Any], context: dict[str, Any] | None,
) -> tuple[Plan, uuid.UUID | None]:
    """The goal's ready-made plan, a reused one, or the LLM's, validated; one repair
    attempt for an answer that is not valid JSON or breaks a plan rule. The LLM sees
    the goal's session history and, for a first plan, similar successful episodes.

    Returns:
        The plan, and the goal whose plan was reused (None: not reused).

    Raises:
        PlanInvalidError: The plan (after its repair attempt) is still invalid.
        BudgetExceededError, RateLimitedError, LLMError: From the planning call.
    """
    check = _checker(context)
    if goal["requested_plan"] is not None and context is None:
        return check(goal["requested_plan"]), None
    session = memory.session_history(gid)
    examples: list[dict[str, Any]] = []
    if context is None:
        if session is None and (reused := memory.reuse_plan(gid, goal, check=check)):
            return reused
        examples = memory.examples(gid, goal)
    repair: dict[str, Any] | None = None
    for attempt in (1, 2):
        request = roles.plan_request(goal["text"], model=goal["model"], registry=registry(),
                                     replan=context, repair=repair, session=session,
                                     examples=examples)
        try:
            result = metered_call(goal_id=gid, step_id=None, provider_name=goal["provider"],
                               model=goal["model"], request=request)
            return check({k: v for k, v in result.data.items()
                          if k in ("steps", "rationale")}), None
        except MalformedOutputError as exc:
            problem, previous = f"the answer is not valid JSON: {exc}", exc.raw
        except PlanInvalidError as exc:
            problem, previous = exc.reason, json.dumps(result.data)[:2_000]
        if attempt == 2:
            raise PlanInvalidError(f"{problem} (after one repair attempt)")
        log.info("plan for goal %s rejected (%s); asking for a repair", gid, problem)
        repair = {"error": problem, "previous": previous}
    raise AssertionError("unreachable")


def plan_goal(goal_id: str) -> None:
    """Ask the goal's LLM for a plan (or take the goal's ready-made one), validate it,
    store it, and dispatch the steps that can start.

    For a replan, the planner sees the steps that succeeded and may reuse their outputs
    by id; they are not run again. An invalid plan (after one repair attempt) ends the
    goal ``failed`` with ``plan_invalid: <reason>`` before any step of it is stored or
    enqueued; so does a plan the database refuses to store (``plan_invalid: the plan
    cannot be stored``). A second delivery of the same message does nothing.
    """
    gid = uuid.UUID(goal_id)
    settings = get_settings()
    goal = db_retry.run(
        lambda c: goal_store.claim_goal_for_planning(
            c, goal_id=gid, stale_after_s=settings.planning_stale_s),
        transactional=False,
    )
    if goal is None:
        log.info("goal %s is not pending: plan_goal delivered again, nothing to do", goal_id)
        return
    if goal["mode"] == GoalMode.REACT:  # its first turn, or the turn after a failed action
        take_turn(gid, goal)
        return
    context = None
    if goal["plan_version"] > 0:
        context = db_retry.run(lambda c: goal_store.replan_context(c, goal_id=gid))
    try:
        plan, reused_from = _obtain_plan(gid, goal, context)
    except RateLimitedError as exc:
        db_retry.run(lambda c: goal_store.defer_planning(c, goal_id=gid))
        publish_plan(gid, countdown=exc.retry_after_s)
        return
    except BudgetExceededError as exc:
        _finish(gid, GoalStatus.FAILED, error=str(exc))
        return
    except PlanInvalidError as exc:
        _finish(gid, GoalStatus.FAILED, error=f"plan_invalid: {exc.reason}")
        return
    except TaskforceError as exc:
        _finish(gid, GoalStatus.FAILED, error=f"planner_failed: {exc}")
        return
    except (ValueError, TypeError, RecursionError) as exc:
        # Not an outage: the same plan would fail the same way on every redelivery.
        log.warning("planning goal %s failed", goal_id, exc_info=True)
        _finish(gid, GoalStatus.FAILED, error=f"planner_failed: {type(exc).__name__}")
        return
    completed = frozenset(c["id"] for c in context["completed"]) if context else frozenset()

    def store(connection: Connection) -> list[tuple[int, str]] | None:
        roots = goal_store.start_plan(connection, goal_id=gid, plan=plan, completed=completed)
        if roots is not None and reused_from is not None:
            goal_store.mark_plan_reused(connection, goal_id=gid, source=reused_from)
        return roots

    try:
        roots = db_retry.run(store)
    except DBAPIError as exc:
        if db_retry.is_transient(exc):
            raise  # an outage outlasting DB_RETRY_MAX_S: the reconciler re-publishes
        # Data Postgres refuses (a value out of range, an invalid byte sequence): left
        # ``planning``, the goal would be re-published and re-planned forever.
        log.warning("the plan of goal %s cannot be stored", goal_id, exc_info=True)
        _finish(gid, GoalStatus.FAILED, error="plan_invalid: the plan cannot be stored "
                f"({type(exc.orig).__name__})")
        return
    if roots:
        publish_steps(gid, roots)
