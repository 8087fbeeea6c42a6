"""Running one step: claim it, run it by kind, commit its result, dispatch dependents.

A ``tool`` step calls its tool (retried on :class:`RetryableToolError` only); a
``validate`` step asks the goal's LLM for a verdict on an earlier output; a
``synthesize`` step asks it for the answer, which ends the goal. See
:mod:`shared.persistence.steps` and ``docs/architecture.md`` for the step protocol.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from shared.domain.models import GoalMode, GoalStatus, StepKind
from shared.domain.refs import resolve
from shared.errors import (
    BudgetExceededError,
    ConfigurationError,
    LLMError,
    RateLimitedError,
    ReferenceError_,
    ToolError,
    is_retryable,
)
from shared.llm import roles
from shared.messages import publish_plan, publish_react_turn, publish_steps, time_limits_s
from shared.persistence import goals as goal_store
from shared.persistence import retry as db_retry
from shared.persistence import steps as step_store
from shared.persistence.db import get_engine
from shared.settings import get_settings
from shared.telemetry import genai, instruments
from shared.tools.base import ToolContext
from worker import memory
from worker.cancellation import GoalCancellationCheck
from worker.leases import LeaseKeeper
from worker.metering import metered_call
from worker.process_state import registry, worker_identity

log = logging.getLogger(__name__)
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # an escaped NUL, not an escaped backslash


@retry(
    retry=retry_if_exception(is_retryable),
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
            engine=get_engine(), cancelled=GoalCancellationCheck(get_engine(), claim.goal_id),
            tenant_id=str(claim.tenant_id) if claim.tenant_id else None,
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
        result = metered_call(goal_id=claim.goal_id, step_id=claim.step_id,
                           provider_name=claim.provider, model=claim.model, request=request)
        verdict = roles.parse_output(result, roles.Verdict)
        if not verdict.ok:
            raise ToolError(f"validation_failed: {verdict.reason}")
        return verdict.model_dump() | {"simulated": result.simulated}
    request = roles.synthesize_request(claim.goal_text, model=claim.model, args=args,
                                       session=memory.session_history(claim.goal_id))
    result = metered_call(goal_id=claim.goal_id, step_id=claim.step_id,
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
            instruments.record_lease_loss(claim.kind)
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
    queue with a countdown. A step whose tool requires approval and that nobody has
    approved is parked ``awaiting_approval`` and the task returns at once (see
    :mod:`shared.persistence.approvals`). A step that fails for good triggers a replan (up to
    ``MAX_REPLANS``), after which the goal ends ``failed`` with the step's error; that
    includes any exception a tool raises (turned into a ToolError at the tool call
    boundary, :meth:`shared.tools.base.Tool.call`) and an output that is not JSON. A
    result the database refuses to store fails its step and its goal once, without a
    replan, rather than being run (and billed) again.
    Failures of our own database while claiming or committing go through
    :mod:`shared.persistence.retry` instead.
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
        log.info("step %s/%s not claimable (done, running, awaiting approval or goal "
                 "ended)", goal_id, step_id)
        return
    if _needs_approval(claim):
        parked = db_retry.run(lambda c: step_store.await_approval(c, claim=claim,
                                                                  worker=worker))
        log.info("step %s/%s awaits approval (parked: %s)", goal_id, step_id, parked)
        return
    _, hard_limit = time_limits_s(claim.kind)
    try:
        with LeaseKeeper(claim, worker=worker, lease_s=settings.step_lease_s,
                         time_limit_s=hard_limit), genai.step_run(
                goal_id=goal_id, step_id=step_id, kind=claim.kind, tool=claim.tool,
                attempt=claim.attempt):
            output = _execute(claim)
            result_json = _to_json(claim, output)
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

    def commit(connection: Connection) -> step_store.Completion:
        done = step_store.complete_step(connection, claim=claim, worker=worker,
                                        result_json=result_json)
        if done.committed and claim.kind == StepKind.SYNTHESIZE and done.goal_status == "running":
            # The answer, the goal's end and its episode commit together.
            goal_store.finish_goal(connection, goal_id=gid, status=GoalStatus.SUCCEEDED,
                                   answer=output["answer"])
        return done

    try:
        done = db_retry.run(commit, transactional=claim.kind == StepKind.SYNTHESIZE)
    except DBAPIError as exc:
        if db_retry.is_transient(exc):
            raise
        # The result is data Postgres refuses (out of range, an invalid byte sequence):
        # running the step again would only bill it again. It fails once, for good.
        log.warning("the result of step %s/%s cannot be stored", goal_id, step_id,
                    exc_info=True)
        what = claim.tool or claim.kind
        _step_failed(gid, claim, worker, f"result of {what} could not be stored "
                     f"({type(exc.orig).__name__})", may_replan=False)
        return
    if not done.committed:
        instruments.record_lease_loss(claim.kind)
    if done.ready:
        publish_steps(gid, done.ready)
    if (done.committed and claim.mode == GoalMode.REACT
            and done.goal_status == GoalStatus.RUNNING):
        publish_react_turn(gid, step_id + 1)  # a ReAct goal's next turn (worker.react)


def _needs_approval(claim: step_store.ClaimedStep) -> bool:
    """True for a tool step whose tool requires approval and that nobody approved yet
    (an unknown tool fails later, at the call, as usual)."""
    if claim.kind != StepKind.TOOL or claim.approval == "approved":
        return False
    try:
        return registry().get(claim.tool or "").requires_approval
    except ToolError:
        return False


def _to_json(claim: step_store.ClaimedStep, output: Any) -> str:
    """The step's output as strict JSON text, as the ``jsonb`` result column stores it.

    Raises:
        ToolError: ``result is not JSON: ...``: the output holds something JSON has no
            form for (a complex number, NaN or infinity, an arbitrary object, a cycle)
            or a NUL character, which Postgres ``jsonb`` refuses.
    """
    what = claim.tool or claim.kind
    try:
        text = json.dumps(output, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ToolError(f"result of {what} is not JSON: {exc}") from None
    if _NUL.search(text):
        raise ToolError(f"result of {what} is not JSON: it holds a NUL character")
    return text


def _describe(claim: step_store.ClaimedStep, exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"bad arguments for {claim.tool}: {where}: {first['msg']}"
    return str(exc) or type(exc).__name__
