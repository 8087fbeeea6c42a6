"""The DAG engine: plan a goal, then run each step as soon as its own inputs exist.

Every function here is called from a Celery task with ids only. State lives in Postgres;
see ``shared.persistence.steps`` for the step protocol (claim, run, commit, dispatch).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from functools import lru_cache
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Connection
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from shared.config import get_settings
from shared.dispatch import publish_plan, publish_steps, time_limits_s
from shared.domain.models import GoalStatus, Plan, StepKind
from shared.domain.refs import resolve
from shared.domain.validation import validate_plan
from shared.errors import (
    BudgetExceededError,
    ConfigurationError,
    LLMError,
    MalformedOutputError,
    PlanInvalidError,
    RateLimitedError,
    ReferenceError_,
    RetryableToolError,
    TaskforceError,
    ToolError,
)
from shared.llm import roles
from shared.llm.base import LLMRequest, LLMResult, Usage
from shared.llm.pricing import cost_usd
from shared.llm.providers import get_provider
from shared.llm.ratelimit import acquire_llm_capacity, estimate_tokens
from shared.persistence import budgets
from shared.persistence import goals as goal_store
from shared.persistence import retry as db_retry
from shared.persistence import steps as step_store
from shared.persistence.db import get_engine
from shared.tools.base import ToolContext
from shared.tools.registry import ToolRegistry, default_registry
from worker.leases import LeaseKeeper

log = logging.getLogger(__name__)

@lru_cache(maxsize=1)
def registry() -> ToolRegistry:
    """The tools of this worker process (built-ins plus ``TOOL_MODULES``), built once."""
    return default_registry()


def worker_identity() -> str:
    """Lease owner name for the current thread: ``host/pid/thread``."""
    return f"{socket.gethostname()}/{os.getpid()}/{threading.get_ident()}"


def _record_call(
    *, goal_id: uuid.UUID, step_id: int | None, purpose: str, provider: str, model: str,
    usage: Usage, latency_s: float, simulated: bool, reservation: budgets.Reservation,
    error: str | None = None,
) -> None:
    """Store one LLM call (tokens, USD, seconds) and release its budget reservation."""
    cost = cost_usd(provider, model, usage.input_tokens, usage.output_tokens,
                    usage.cached_tokens)

    def work(connection: Connection) -> None:
        goal_store.record_llm_call(
            connection, goal_id=goal_id, step_id=step_id, purpose=purpose,
            provider=provider, model=model, usage=usage, cost_usd=cost,
            latency_s=latency_s, simulated=simulated, error=error,
        )
        budgets.release(connection, goal_id=goal_id, reservation=reservation)

    db_retry.run(work)


def _llm_call(
    *, goal_id: uuid.UUID, step_id: int | None, provider_name: str, model: str,
    request: LLMRequest,
) -> LLMResult:
    """Run one LLM request within the goal's budget and the fleet's rate limit, and
    record it (tokens, USD, seconds) before returning.

    Raises:
        BudgetExceededError: The call's worst case does not fit the goal's budget; it was
            not made.
        RateLimitedError: The fleet-wide limit would make it wait too long; not made.
        LLMError: The call failed for good (a malformed answer's tokens are recorded).
    """
    provider = get_provider(provider_name)
    estimate = estimate_tokens(request)
    reservation = budgets.Reservation(
        tokens=estimate,
        cost_usd=cost_usd(provider.name, model, estimate - request.max_output_tokens,
                          request.max_output_tokens),
    )
    check = db_retry.run(
        lambda c: budgets.reserve(c, goal_id=goal_id, reservation=reservation))
    if not check.granted:
        raise BudgetExceededError(f"budget_exceeded: {check.describe(reservation)}")
    started = time.monotonic()
    try:
        acquire_llm_capacity(provider.name, model, estimate)
        result = roles.call(provider, request)
    except MalformedOutputError as exc:
        # The tokens of a malformed answer were billed: record them.
        _record_call(goal_id=goal_id, step_id=step_id, purpose=request.purpose,
                     provider=provider.name, model=model,
                     usage=Usage(input_tokens=exc.input_tokens, output_tokens=exc.output_tokens),
                     latency_s=time.monotonic() - started, simulated=False,
                     reservation=reservation, error=str(exc))
        raise
    except BaseException:
        db_retry.run(lambda c: budgets.release(c, goal_id=goal_id, reservation=reservation))
        raise
    _record_call(goal_id=goal_id, step_id=step_id, purpose=request.purpose,
                 provider=provider.name, model=model, usage=result.usage,
                 latency_s=result.latency_s, simulated=result.simulated,
                 reservation=reservation)
    return result


def _finish(goal_id: uuid.UUID, status: GoalStatus, *, error: str | None = None) -> None:
    def work(connection: Connection) -> None:
        goal_store.lock_goal(connection, goal_id=goal_id)
        goal_store.finish_goal(connection, goal_id=goal_id, status=status, error=error)

    db_retry.run(work)


def _obtain_plan(
    gid: uuid.UUID, goal: dict[str, Any], context: dict[str, Any] | None,
) -> Plan:
    """The goal's ready-made plan, or the LLM's, validated; one repair attempt for an
    answer that is not valid JSON or breaks a plan rule.

    Raises:
        PlanInvalidError: The plan (after its repair attempt) is still invalid.
        BudgetExceededError, RateLimitedError, LLMError: From the planning call.
    """
    settings = get_settings()
    completed = frozenset(c["id"] for c in context["completed"]) if context else frozenset()
    used = frozenset(context["used_step_ids"]) if context else frozenset()

    def check(raw: dict[str, Any]) -> Plan:
        return validate_plan(raw, registry=registry(), max_steps=settings.max_plan_steps,
                             max_fan_out=settings.max_fan_out, completed=completed,
                             used_ids=used)

    if goal["requested_plan"] is not None and context is None:
        return check(goal["requested_plan"])
    repair: dict[str, Any] | None = None
    for attempt in (1, 2):
        request = roles.plan_request(goal["text"], model=goal["model"], registry=registry(),
                                     replan=context, repair=repair)
        try:
            result = _llm_call(goal_id=gid, step_id=None, provider_name=goal["provider"],
                               model=goal["model"], request=request)
            return check({k: v for k, v in result.data.items() if k in ("steps", "rationale")})
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
    enqueued. A second delivery of the same message does nothing.
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
    context = None
    if goal["plan_version"] > 0:
        context = db_retry.run(lambda c: goal_store.replan_context(c, goal_id=gid))
    try:
        plan = _obtain_plan(gid, goal, context)
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
    completed = frozenset(c["id"] for c in context["completed"]) if context else frozenset()
    roots = db_retry.run(
        lambda c: goal_store.start_plan(c, goal_id=gid, plan=plan, completed=completed))
    if roots:
        publish_steps(gid, roots)


@retry(
    retry=retry_if_exception_type(RetryableToolError),
    stop=stop_after_attempt(3),
    wait=wait_exponential_jitter(multiplier=0.5, max=10.0, jitter=0.5),
    reraise=True,
)
def _call_tool(name: str, args: dict[str, Any], ctx: ToolContext) -> Any:
    return registry().get(name).call(args, ctx)


def _simulated_tool_latency_s(claim: step_store.ClaimedStep) -> float:
    """Simulated round trip (seconds) for a remote tool in a ``sim`` goal, else 0."""
    settings = get_settings()
    if claim.provider != "sim" or not registry().get(claim.tool or "").remote:
        return 0.0
    return settings.sim_tool_latency_s * settings.sim_latency_scale


def _execute(claim: step_store.ClaimedStep) -> Any:
    """Run a claimed step and return its JSON output.

    Raises:
        ToolError, LLMError, ReferenceError_, ValidationError: The step failed for good.
    """
    args = resolve(claim.args, claim.inputs)
    kind = StepKind(claim.kind)
    if kind is StepKind.TOOL:
        ctx = ToolContext(
            goal_id=str(claim.goal_id), step_id=claim.step_id, attempt=claim.attempt,
            engine=get_engine(),
        )
        output = _call_tool(claim.tool or "", args, ctx)
        delay = _simulated_tool_latency_s(claim)
        if delay and isinstance(output, dict):
            time.sleep(delay)
            output = output | {"simulated_latency_s": round(delay, 4)}
        return output
    if kind is StepKind.VALIDATE:
        request = roles.validate_request(
            claim.goal_text, model=claim.model,
            criteria=str(args.get("criteria", "the output answers its step")),
            target=args.get("target"),
        )
        result = _llm_call(goal_id=claim.goal_id, step_id=claim.step_id,
                           provider_name=claim.provider, model=claim.model, request=request)
        verdict = roles.parse_output(result, roles.Verdict)
        if not verdict.ok:
            raise ToolError(f"validation_failed: {verdict.reason}")
        return verdict.model_dump() | {"simulated": result.simulated}
    request = roles.synthesize_request(claim.goal_text, model=claim.model, args=args)
    result = _llm_call(goal_id=claim.goal_id, step_id=claim.step_id,
                       provider_name=claim.provider, model=claim.model, request=request)
    answer = roles.parse_output(result, roles.Answer)
    return {"answer": answer.answer, "simulated": result.simulated}


def _step_failed(gid: uuid.UUID, claim: step_store.ClaimedStep, worker: str,
                 error: str, *, may_replan: bool) -> None:
    """Record a step's final failure; replan the goal if it has a replan left, else end
    it ``failed``. A budget stop (``budget_exceeded:``) is never replanned."""
    settings = get_settings()

    def work(connection: Connection) -> bool:
        if not step_store.fail_step(connection, claim=claim, worker=worker, error=error):
            return False
        if may_replan and goal_store.begin_replan(connection, goal_id=gid,
                                                  max_replans=settings.max_replans):
            return True
        reason = error if error.startswith("budget_exceeded:") else (
            f"step_failed: step {claim.step_id}: {error}")
        goal_store.finish_goal(connection, goal_id=gid, status=GoalStatus.FAILED,
                               error=reason)
        return False

    if db_retry.run(work):
        try:
            publish_plan(gid)
        except Exception:
            log.warning("publishing the replan of goal %s failed", gid, exc_info=True)


def run_step(goal_id: str, step_id: int) -> None:
    """Claim, run and commit one step, then dispatch the dependents it made ready.

    Safe to deliver twice: a second delivery finds the step claimed (under a live
    lease) or done, and returns. While the step runs its lease is renewed; every
    database phase is retried through connection failures, and dependents are published
    only after the commit. A step refused by the fleet's rate limit goes back on the
    queue with a countdown. A step that fails for good triggers a replan (up to
    ``MAX_REPLANS``), after which the goal ends ``failed`` with the step's error.
    """
    gid = uuid.UUID(goal_id)
    settings = get_settings()
    worker = worker_identity()
    claim = db_retry.run(
        lambda c: step_store.claim_step(
            c, goal_id=gid, step_id=step_id, worker=worker,
            lease_s=settings.step_lease_s, max_attempts=settings.step_max_attempts),
        transactional=False,
    )
    if claim is None:
        log.info("step %s/%s not claimable (done, running or goal ended)", goal_id, step_id)
        return
    _, hard_limit = time_limits_s(claim.kind)
    try:
        with LeaseKeeper(claim, worker=worker, lease_s=settings.step_lease_s,
                         time_limit_s=hard_limit):
            output = _execute(claim)
    except RateLimitedError as exc:
        reason, countdown = str(exc), exc.retry_after_s
        db_retry.run(lambda c: step_store.release_step(c, claim=claim, worker=worker,
                                                       reason=reason))
        publish_steps(gid, [(step_id, claim.kind)], countdown=countdown)
        return
    except BudgetExceededError as exc:
        _step_failed(gid, claim, worker, str(exc), may_replan=False)
        return
    except (ToolError, LLMError, ReferenceError_, ValidationError, ConfigurationError) as exc:
        _step_failed(gid, claim, worker, _describe(claim, exc), may_replan=True)
        return

    result_json = json.dumps(output)

    def commit(connection: Connection) -> step_store.Completion:
        done = step_store.complete_step(connection, claim=claim, worker=worker,
                                        result_json=result_json)
        if done.committed and claim.kind == StepKind.SYNTHESIZE and done.goal_status == "running":
            # The answer, the goal's end and its episode commit together.
            goal_store.finish_goal(connection, goal_id=gid, status=GoalStatus.SUCCEEDED,
                                   answer=output["answer"])
        return done

    done = db_retry.run(commit, transactional=claim.kind == StepKind.SYNTHESIZE)
    if done.ready:
        publish_steps(gid, done.ready)


def _describe(claim: step_store.ClaimedStep, exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"bad arguments for {claim.tool}: {where}: {first['msg']}"
    return str(exc) or type(exc).__name__
