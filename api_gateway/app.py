"""FastAPI application: ``POST /v1/goals``, ``GET /v1/goals/{id}``, ``GET /healthz``.

The gateway only validates, writes the goal row and enqueues ``plan_goal`` by name; it
never runs planner or step code. When Redis or Postgres cannot be reached it answers
503 with a reason, never 500.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import redis
from fastapi import FastAPI, Header, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as KombuOperationalError
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError

from shared import goals
from shared.domain.models import Goal, GoalRequest, GoalStatus
from shared.errors import (
    ConfigurationError,
    GoalAlreadyFinishedError,
    GoalNotFoundError,
    IdempotencyConflictError,
    PlanInvalidError,
    ServiceUnavailableError,
)
from shared.persistence.db import ping as ping_database
from shared.settings import get_settings


class GoalAccepted(BaseModel):
    """Answer to ``POST /v1/goals``: the new goal's id and where to poll it."""

    id: uuid.UUID
    status: GoalStatus
    url: str


def create_app() -> FastAPI:
    """Build the gateway application (no connection is opened until a request needs one)."""
    app = FastAPI(
        title="Taskforce gateway",
        version="0.1.0",
        description="Submit goals for LLM agents and follow their DAG of steps.",
    )

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    async def _database_down(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            status_code=503, content={"detail": "database unavailable, try again shortly"},
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(KombuOperationalError)
    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(ServiceUnavailableError)
    async def _broker_down(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            status_code=503, content={"detail": "message broker unavailable, try again shortly"},
            headers={"Retry-After": "2"},
        )

    @app.post("/v1/goals", status_code=status.HTTP_202_ACCEPTED, response_model=GoalAccepted)
    def submit(
        body: GoalRequest,
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(min_length=1, max_length=255,
                   description="Retries with the same key and body return the same goal."),
        ] = None,
    ) -> GoalAccepted:
        """Accept a goal; it is planned and run asynchronously.

        With an ``Idempotency-Key`` header, a repeat of the same body returns the goal
        of the first request (header ``Idempotent-Replayed: true``) and a different body
        is refused with 422.
        """
        try:
            outcome = goals.submit(body, idempotency_key=idempotency_key)
        except (ConfigurationError, IdempotencyConflictError) as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        except PlanInvalidError as exc:
            raise HTTPException(status_code=422, detail=f"plan_invalid: {exc.reason}") from None
        if not outcome.created:
            response.headers["Idempotent-Replayed"] = "true"
        goal_id = outcome.goal_id
        return GoalAccepted(id=goal_id, status=GoalStatus.PENDING, url=f"/v1/goals/{goal_id}")

    @app.post("/v1/goals/{goal_id}/cancel", response_model=Goal)
    def cancel(goal_id: uuid.UUID) -> Goal:
        """Cancel a goal: dispatch stops, queued steps are revoked, the goal becomes
        ``cancelled``. 409 if it had already ended."""
        try:
            return goals.cancel_goal(goal_id)
        except GoalNotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        except GoalAlreadyFinishedError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None

    @app.get("/v1/goals/{goal_id}", response_model=Goal)
    def read(goal_id: uuid.UUID) -> Goal:
        """The goal's status, plan with per-step status and timings, answer and totals."""
        try:
            return goals.get_goal(goal_id)
        except GoalNotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """200 when Postgres and Redis both answer, else 503 naming what is down."""
        problems = []
        try:
            ping_database()
        except Exception:
            problems.append("database")
        try:
            client = redis.Redis.from_url(get_settings().redis_url or "", socket_timeout=1)
            client.ping()
            client.close()
        except Exception:
            problems.append("broker")
        if problems:
            return JSONResponse(status_code=503, content={"status": "unavailable",
                                                          "down": problems})
        return JSONResponse(status_code=200, content={"status": "ok"})

    return app


app = create_app()
