"""``taskforce approve`` and ``taskforce reject``: decide a step awaiting approval.

They call :func:`shared.goals.decide_step`, as the gateway's approval routes do, on the
servers named by ``REDIS_URL`` and ``DATABASE_URL`` (the ones the goal runs on), and
record the decision as made by ``cli``.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Optional

import typer

from shared.domain.models import ApprovalDecision
from shared.errors import TaskforceError
from taskforce_cli.console import fail, out

GoalIdArgument = Annotated[uuid.UUID, typer.Argument(help="The goal's id.")]
StepIdArgument = Annotated[int, typer.Argument(min=1, help="The step's number.")]
ReasonOption = Annotated[Optional[str], typer.Option(help="Why (stored with the decision).")]


def _decide(goal_id: uuid.UUID, step_id: int, decision: ApprovalDecision,
            reason: str | None) -> None:
    from shared import goals

    try:
        view = goals.decide_step(goal_id, step_id, decision=decision, by="cli",
                                 reason=reason)
    except TaskforceError as exc:
        fail(str(exc))
    step = next(s for s in view.steps if s.id == step_id)
    out.print_json(json.dumps({"goal": str(view.id), "goal_status": view.status.value,
                               "step": step_id, "step_status": step.status.value,
                               "decision": decision.value}))


def approve(goal_id: GoalIdArgument, step_id: StepIdArgument,
            reason: ReasonOption = None) -> None:
    """Approve a step awaiting approval: it is queued and runs."""
    _decide(goal_id, step_id, ApprovalDecision.APPROVED, reason)


def reject(goal_id: GoalIdArgument, step_id: StepIdArgument,
           reason: ReasonOption = None) -> None:
    """Reject a step awaiting approval: it fails and its goal ends failed."""
    _decide(goal_id, step_id, ApprovalDecision.REJECTED, reason)
