"""The listing and batch routes of the v1 API.

``GET /v1/goals`` lists the tenant's goals, newest first, with filters (status, time
range, metadata ``key:value``, provider, model, batch, session) and cursor pages.
``POST /v1/batches`` takes many goals at once (a JSON array, or JSONL with
``Content-Type: application/x-ndjson``); ``GET /v1/batches/{id}`` reports its goals by
status and their cost so far, ``GET /v1/batches/{id}/results`` streams one JSON line per
item, the lines ``taskforce batch`` writes.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at runtime.
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api_gateway.auth import requires
from api_gateway.errors import responses
from shared import batches, goal_queries
from shared.auth import GOALS_READ, GOALS_SUBMIT, PLANS_SUBMIT, Principal
from shared.domain.models import SESSION_ID_PATTERN, GoalStatus

GOAL_TEXT_SHOWN = 500  # characters of a goal's text in a listing (the goal has it all)

Reader = Annotated[Principal, Depends(requires(GOALS_READ))]
Submitter = Annotated[Principal, Depends(requires(GOALS_SUBMIT))]


class GoalSummary(BaseModel):
    """A goal in a listing: its text (first 500 characters), state, model, metadata,
    batch, times, token and cost totals (USD)."""

    id: uuid.UUID
    goal: str
    status: GoalStatus
    provider: str
    model: str
    metadata: dict[str, Any]
    batch_id: uuid.UUID | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    tokens: int
    cost_usd: float


class GoalList(BaseModel):
    """A page of goals; pass ``next_cursor`` as ``cursor`` for the next (None: last page)."""

    goals: list[GoalSummary]
    next_cursor: str | None


class ItemOutcome(BaseModel):
    """What became of one batch item: its goal (``status_code`` 202, or 200 when its
    idempotency key replayed an earlier goal), or why it was refused."""

    index: int
    id: str
    goal_id: uuid.UUID | None
    status_code: int
    error: str | None


class BatchCreated(BaseModel):
    """Answer to ``POST /v1/batches``."""

    id: uuid.UUID
    url: str
    results_url: str
    total: int
    accepted: int
    rejected: int
    items: list[ItemOutcome]


class Rejection(BaseModel):
    """A batch item that did not become a goal."""

    index: int
    id: str
    status_code: int
    error: str | None


class BatchStatus(BaseModel):
    """A batch's progress: goals by status, whether all ended, tokens and USD so far."""

    id: uuid.UUID
    created_at: datetime
    total: int
    accepted: int
    rejected: int
    counts: dict[str, int]
    done: bool
    input_tokens: int
    output_tokens: int
    tokens: int
    cost_usd: float
    results_url: str
    rejections: list[Rejection]


def summary(row: dict[str, Any]) -> GoalSummary:
    """A listing row as :class:`GoalSummary`."""
    return GoalSummary(
        id=row["id"], goal=row["text"][:GOAL_TEXT_SHOWN], status=row["status"],
        provider=row["provider"], model=row["model"], metadata=row["metadata"],
        batch_id=row["batch_id"], error=row["error"], created_at=row["created_at"],
        finished_at=row["finished_at"],
        tokens=int(row["input_tokens"]) + int(row["output_tokens"]),
        cost_usd=float(row["cost_usd"]))


_BATCH_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}},
                             "example": [{"id": "q1", "goal": "What is 17 * 23?"}]},
        "application/x-ndjson": {"schema": {"type": "string"},
                                 "example": '{"id": "q1", "goal": "What is 17 * 23?"}\n'},
    },
    "description": "Goals as POST /v1/goals takes them, each with an optional `id` "
                   "(kept with its result) and `idempotency_key`.",
}


def build_router() -> APIRouter:
    """The routes ``GET /v1/goals`` and ``/v1/batches``."""
    router = APIRouter(tags=["goals"])

    @router.get("/v1/goals", response_model=GoalList, responses=responses())
    def list_goals(
        principal: Reader,
        status_: Annotated[list[GoalStatus], Query(alias="status", max_length=7)] = [],  # noqa: B006
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        metadata: Annotated[list[str], Query(
            max_length=goal_queries.MAX_METADATA_FILTERS,
            description="key:value; every filter must match")] = [],  # noqa: B006
        provider: Annotated[str | None, Query(max_length=64)] = None,
        model: Annotated[str | None, Query(max_length=128)] = None,
        batch: uuid.UUID | None = None,
        session: Annotated[str | None, Query(pattern=SESSION_ID_PATTERN)] = None,
        cursor: Annotated[str | None, Query(max_length=goal_queries.MAX_CURSOR_CHARS)] = None,
        limit: Annotated[int, Query(ge=1, le=1_000)] = 50,
    ) -> GoalList:
        """The tenant's goals, newest first; ``next_cursor`` fetches the next page."""
        query = goal_queries.ListQuery(
            statuses=tuple(s.value for s in status_), created_after=created_after,
            created_before=created_before, metadata=tuple(metadata), provider=provider,
            model=model, batch_id=batch, session_id=session)
        page = goal_queries.list_goals(query, tenant_id=principal.tenant_id, limit=limit,
                                       cursor=cursor)
        return GoalList(goals=[summary(row) for row in page.goals],
                        next_cursor=page.next_cursor)

    @router.post("/v1/batches", status_code=status.HTTP_202_ACCEPTED,
                 response_model=BatchCreated, tags=["batches"], responses=responses(),
                 openapi_extra={"requestBody": _BATCH_BODY})
    async def create_batch(request: Request, principal: Submitter) -> BatchCreated:
        """Submit many goals; each is checked and counted against quotas like ``POST
        /v1/goals``. One invalid item refuses the batch (422 naming it); an item refused
        at submission (a quota) is listed with its status code and reason."""
        body = await request.body()
        items = await run_in_threadpool(batches.parse_items, body,
                                        request.headers.get("content-type", ""))
        if any(item.plan is not None for item in items):
            principal.require(PLANS_SUBMIT)
        accepted = await run_in_threadpool(batches.submit_batch, items,
                                           tenant_id=principal.tenant_id)
        batch_id = accepted.batch_id
        return BatchCreated(
            id=batch_id, url=f"/v1/batches/{batch_id}",
            results_url=f"/v1/batches/{batch_id}/results", total=len(items),
            accepted=accepted.accepted, rejected=len(items) - accepted.accepted,
            items=[ItemOutcome(**item) for item in accepted.items])

    @router.get("/v1/batches/{batch_id}", response_model=BatchStatus, tags=["batches"],
                responses=responses(404))
    def read_batch(batch_id: uuid.UUID, principal: Reader) -> BatchStatus:
        """The batch's goals by status, whether all have ended, tokens and cost so far."""
        report = batches.batch_status(batch_id, tenant_id=principal.tenant_id)
        return BatchStatus(**report, tokens=report["input_tokens"] + report["output_tokens"],
                           results_url=f"/v1/batches/{batch_id}/results")

    @router.get("/v1/batches/{batch_id}/results", tags=["batches"], responses={
        **responses(404),
        200: {"description": "One JSON object per line and item, in item order",
              "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}})
    def batch_results(batch_id: uuid.UUID, principal: Reader) -> StreamingResponse:
        """Each item's result as a JSON line (``id``, ``goal_id``, ``status``, ``answer``,
        ``error``, ``tokens``, ``cost_usd``, ``steps``, ``latency_s``), a goal still
        running with its current status, a refused item as ``not_submitted``."""
        lines = batches.batch_results(batch_id, tenant_id=principal.tenant_id)
        return StreamingResponse(lines, media_type="application/x-ndjson")

    return router
