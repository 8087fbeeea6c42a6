"""The ReAct execution mode: one LLM call chooses each next action, the action runs as
an ordinary step, and its commit triggers the next turn, until the LLM answers.

A goal submitted with ``mode="react"`` is never planned as a DAG. Its first turn is its
``plan_goal`` (the goal moves ``pending → planning`` as for any goal); each later turn
is a ``react_turn(goal_id, turn)`` message published after the commit of the step the
previous turn created. Turn N creates step N: a ``tool`` step (the action, validated
against the tool's input model and the same limits as a planned step, then claimed,
leased, run, approved if its tool requires it, and committed by
:mod:`worker.execution`) or, when the LLM answers, a ``synthesize`` step holding the
answer, which ends the goal. The SQL is :mod:`shared.persistence.react`; the prompt is
:func:`shared.llm.roles.react_request`. Each turn's LLM call is metered like the
planner's (budget, rate limit, tokens and USD recorded).

Bounds: at most ``REACT_MAX_TURNS`` turns (then ``failed`` with
``react_turns_exhausted``); every observation in the prompt is cut to
``LLM_UNTRUSTED_MAX_CHARS`` characters. A turn whose answer is not JSON or not a valid
action gets one repair attempt, then the goal ends ``failed`` with ``react_invalid: turn
N: <reason>``. A failed action goes the way of any failed step: the goal is
"replanned", which for a ReAct goal is its next turn, seeing the error as the
observation (each costs one of the goal's ``MAX_REPLANS``).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Connection

from shared.domain.models import GoalStatus, Step, StepKind, StepStatus
from shared.domain.refs import referenced_steps
from shared.domain.validation import check_tool_step
from shared.errors import (
    BudgetExceededError,
    LLMError,
    MalformedOutputError,
    PlanInvalidError,
    RateLimitedError,
    TaskforceError,
)
from shared.llm import roles
from shared.messages import publish_plan, publish_steps
from shared.persistence import goals as goal_store
from shared.persistence import react as react_store
from shared.persistence import retry as db_retry
from shared.settings import get_settings
from shared.tools.registry import ToolRegistry
from worker.metering import metered_call
from worker.process_state import registry

log = logging.getLogger(__name__)


def observations(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The history a turn sees: each finished tool step with its observation or error."""
    seen: list[dict[str, Any]] = []
    for row in rows:
        if row["kind"] != StepKind.TOOL:
            continue
        item = {"step": row["step_id"], "tool": row["tool"], "args": row["args"]}
        if row["status"] == StepStatus.SUCCEEDED:
            item["observation"] = row["result"]
        else:
            item["error"] = row["error"] or row["status"]
        seen.append(item)
    return seen


def check_turn(decision: roles.ReactTurn, *, turn: int, tools: ToolRegistry,
               succeeded: frozenset[int]) -> Step | str:
    """The turn's action as step ``turn``, or its answer text.

    Args:
        decision: The LLM's answer, parsed.
        turn: The turn number (the new step's id).
        tools: The tools an action may call.
        succeeded: Ids of the goal's steps that succeeded (an argument may refer to
            their outputs as ``"$N"``).

    Raises:
        PlanInvalidError: Both or neither of ``tool`` and ``answer``; an unknown tool;
            arguments that do not fit its input model or break a step limit (depth,
            size); a reference to a step that has not succeeded.
    """
    answer = (decision.answer or "").strip()
    if decision.tool and answer:
        raise PlanInvalidError("both an action and an answer: give one")
    if answer:
        return answer
    if not decision.tool:
        raise PlanInvalidError("neither an action (\"tool\") nor an \"answer\"")
    try:
        step = Step(id=turn, kind=StepKind.TOOL, tool=decision.tool,
                    args=decision.args or {}, description=decision.thought[:2_000] or None)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in error["loc"])
        raise PlanInvalidError(f"the action does not fit a step: {where}: {error['msg']}"
                               ) from None
    missing = referenced_steps(step.args) - succeeded
    if missing:
        raise PlanInvalidError(f"the action refers to step(s) {sorted(missing)}, which did "
                               "not succeed")
    check_tool_step(step, tools)
    return step


def _decide(gid: uuid.UUID, goal: dict[str, Any], rows: list[dict[str, Any]], turn: int,
            ) -> tuple[Step | str, bool, str]:
    """Ask the goal's LLM for turn ``turn``: ``(action or answer, simulated, thought)``;
    one repair attempt for an answer that is not JSON or not a valid action.

    Raises:
        PlanInvalidError: Still invalid after the repair attempt.
        BudgetExceededError, RateLimitedError, LLMError: From the LLM call.
    """
    settings = get_settings()
    succeeded = frozenset(r["step_id"] for r in rows if r["status"] == StepStatus.SUCCEEDED)
    repair: dict[str, Any] | None = None
    for attempt in (1, 2):
        request = roles.react_request(
            goal["text"], model=goal["model"], registry=registry(), history=observations(rows),
            turns_left=settings.react_max_turns - turn + 1, repair=repair)
        try:
            result = metered_call(goal_id=gid, step_id=turn, provider_name=goal["provider"],
                                  model=goal["model"], request=request)
        except MalformedOutputError as exc:
            problem, previous = f"the answer is not valid JSON: {exc}", exc.raw
        else:
            try:
                # parse_output's LLMError: the JSON does not fit the turn's schema.
                decision = roles.parse_output(result, roles.ReactTurn)
                return (check_turn(decision, turn=turn, tools=registry(),
                                   succeeded=succeeded), result.simulated, decision.thought)
            except (PlanInvalidError, LLMError) as exc:
                problem = exc.reason if isinstance(exc, PlanInvalidError) else str(exc)
                previous = json.dumps(result.data)[:2_000]
        if attempt == 2:
            raise PlanInvalidError(f"{problem} (after one repair attempt)")
        log.info("turn %s of goal %s rejected (%s); asking for a repair", turn, gid, problem)
        repair = {"error": problem, "previous": previous}
    raise AssertionError("unreachable")


def _fail(gid: uuid.UUID, error: str) -> None:
    def work(connection: Connection) -> None:
        goal_store.lock_goal(connection, goal_id=gid)
        goal_store.finish_goal(connection, goal_id=gid, status=GoalStatus.FAILED, error=error)

    db_retry.run(work)


def take_turn(gid: uuid.UUID, goal: dict[str, Any]) -> None:
    """Take the next turn of a ReAct goal this worker has moved to ``planning``: ask the
    LLM, then store and dispatch its action, or record its answer and end the goal."""
    settings = get_settings()
    rows = db_retry.run(lambda c: react_store.history(c, goal_id=gid), transactional=False)
    turn = 1 + max((r["step_id"] for r in rows), default=0)
    if turn > settings.react_max_turns:
        _fail(gid, f"react_turns_exhausted: no answer after {settings.react_max_turns} turns")
        return
    try:
        decided, simulated, thought = _decide(gid, goal, rows, turn)
    except RateLimitedError as exc:
        db_retry.run(lambda c: goal_store.defer_planning(c, goal_id=gid))
        publish_plan(gid, countdown=exc.retry_after_s)
        return
    except BudgetExceededError as exc:
        _fail(gid, str(exc))
        return
    except PlanInvalidError as exc:
        _fail(gid, f"react_invalid: turn {turn}: {exc.reason}")
        return
    except TaskforceError as exc:
        _fail(gid, f"react_failed: turn {turn}: {exc}")
        return
    if isinstance(decided, str):
        db_retry.run(lambda c: react_store.record_answer(
            c, goal_id=gid, step_id=turn, answer=decided, simulated=simulated,
            thought=thought))
        return
    if db_retry.run(lambda c: react_store.append_action(c, goal_id=gid, step=decided)):
        publish_steps(gid, [(decided.id, StepKind.TOOL.value)])


def react_turn(goal_id: str, turn: int) -> None:
    """Take turn ``turn`` of the ReAct goal ``goal_id`` (UUID text), published after step
    ``turn - 1`` committed. A second delivery (or one for a turn already taken, or for
    a goal that ended) finds nothing to claim and returns."""
    gid = uuid.UUID(goal_id)
    goal = db_retry.run(lambda c: react_store.claim_turn(c, goal_id=gid, turn=turn),
                        transactional=False)
    if goal is None:
        log.info("turn %s of goal %s not claimable (taken, or the goal moved on)", turn,
                 goal_id)
        return
    take_turn(gid, goal)
