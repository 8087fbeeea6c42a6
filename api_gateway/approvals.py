"""Approving and rejecting steps that await approval (human in the loop).

``POST /v1/goals/{goal_id}/steps/{step_id}/approve`` and ``.../reject``, body optional
``{"reason": "..."}``. Both answer the goal object after the decision; 404 for an
unknown goal or step, 409 for a step that is not awaiting approval (never asked,
decided already, or its goal ended), 422 for a bad reason. The decision itself is
:func:`shared.goals.decide_step`, the same call ``taskforce approve``/``reject`` makes.

Who may decide: a key with the ``steps:approve`` scope, for its own tenant's goals
(another tenant's goal is a 404); the decision records the key's id as ``approval_by``
(``api`` when authentication is off).
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures, whose
# Approver dependency is made inside build_router, at runtime.
import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from api_gateway.auth import requires
from api_gateway.errors import responses
from shared import goals
from shared.auth import STEPS_APPROVE, Principal
from shared.domain.models import ApprovalDecision, Goal

STEP_ID_MAX = 2**31 - 1  # the steps.step_id column is a Postgres integer


class Decision(BaseModel):
    """Optional body of an approval decision.

    Attributes:
        reason: Why, stored with the decision (at most 1,000 characters).
    """

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=goals.MAX_REASON_CHARS)


StepId = Annotated[int, Path(ge=1, le=STEP_ID_MAX)]
Body_ = Annotated[Decision | None, Body()]


Approver = Annotated[Principal, Depends(requires(STEPS_APPROVE))]


def build_router() -> APIRouter:
    """The approval routes; each needs a key with the ``steps:approve`` scope."""
    router = APIRouter(tags=["approvals"], responses=responses(404, 409))

    @router.post("/v1/goals/{goal_id}/steps/{step_id}/approve", response_model=Goal)
    def approve(goal_id: uuid.UUID, step_id: StepId, principal: Approver,
                body: Body_ = None) -> Goal:
        """Approve a step awaiting approval: it is queued and runs. 409 if the step is
        not awaiting approval."""
        return goals.decide_step(goal_id, step_id, decision=ApprovalDecision.APPROVED,
                                 by=principal.key_id or "api", tenant_id=principal.tenant_id,
                                 reason=body.reason if body else None)

    @router.post("/v1/goals/{goal_id}/steps/{step_id}/reject", response_model=Goal)
    def reject(goal_id: uuid.UUID, step_id: StepId, principal: Approver,
               body: Body_ = None) -> Goal:
        """Reject a step awaiting approval: it fails with ``approval_rejected: <reason>``
        and the goal ends ``failed``. 409 if the step is not awaiting approval."""
        return goals.decide_step(goal_id, step_id, decision=ApprovalDecision.REJECTED,
                                 by=principal.key_id or "api", tenant_id=principal.tenant_id,
                                 reason=body.reason if body else None)

    return router
