"""FastAPI application: ``POST /v1/goals``, ``GET /v1/goals/{id}``, ``GET /healthz``.

The gateway only validates, writes the goal row and enqueues ``plan_goal`` by name; it
never runs planner or step code. Errors map by kind (:mod:`shared.errors`): a client's
bad request answers 422 with the reason (404 for an unknown goal, 409 for one already
ended), and so does data the database refuses to store; a body over its size limit is a
413 (:mod:`api_gateway.limits`); only Redis or Postgres out of reach answers 503 with
``Retry-After``, never 500.
Every ``/v1`` route takes an API key with the scope it needs (:mod:`api_gateway.auth`);
a goal is visible only to the tenant that submitted it.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import redis
from fastapi import Depends, FastAPI, Header, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as KombuOperationalError
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError

from api_gateway import approvals, events, memory, metrics, probes, sessions, v1
from api_gateway.auth import requires
from api_gateway.console import routes as console
from api_gateway.errors import responses
from api_gateway.limits import RequestLimits
from shared import goals
from shared.auth import GOALS_CANCEL, GOALS_READ, GOALS_SUBMIT, PLANS_SUBMIT, Principal
from shared.domain.models import Goal, GoalRequest, GoalStatus
from shared.errors import ConfigurationError, RequestError, TransientError
from shared.persistence.retry import is_transient

RETRY_AFTER_S = 2  # what a 503 asks clients to wait (seconds): a Postgres or Redis blip


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
        lifespan=metrics.lifespan,
    )

    @app.exception_handler(RequestError)
    async def _bad_request(_: Request, exc: RequestError) -> JSONResponse:
        # 422 with the reason; 404 for an unknown goal, 409 for one already ended, 429
        # for a quota (with Retry-After in seconds when a wait will do).
        retry_after = getattr(exc, "retry_after_s", None)
        return JSONResponse(status_code=exc.http_status, content={"detail": exc.detail()},
                            headers={"Retry-After": str(retry_after)} if retry_after else None)

    app.add_middleware(RequestLimits)  # body size and JSON shape, before any parsing

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": validation_errors(exc)})

    @app.exception_handler(DBAPIError)
    async def _database_error(_: Request, exc: DBAPIError) -> JSONResponse:
        # Only a lost or refused connection is an outage; data the database refuses
        # (a value out of range, an invalid byte sequence) is the request's fault.
        if is_transient(exc):
            return _unavailable("database unavailable, try again shortly")
        return JSONResponse(status_code=422, content={
            "detail": "the request holds data the database cannot store"})

    @app.exception_handler(KombuOperationalError)
    @app.exception_handler(redis.exceptions.ConnectionError)
    async def _broker_down(_: Request, exc: Exception) -> JSONResponse:
        return _unavailable("message broker unavailable, try again shortly")

    @app.exception_handler(TransientError)
    async def _transient(_: Request, exc: TransientError) -> JSONResponse:
        return _unavailable(f"{exc}, try again shortly")

    @app.exception_handler(ConfigurationError)
    async def _misconfigured(_: Request, exc: ConfigurationError) -> JSONResponse:
        # The operator's settings, not the client's request: no detail leaves the server.
        return JSONResponse(status_code=500, content={"detail": "the gateway is misconfigured"})

    @app.post("/v1/goals", status_code=status.HTTP_202_ACCEPTED, response_model=GoalAccepted,
              responses=responses(429))
    def submit(
        body: GoalRequest,
        response: Response,
        principal: Annotated[Principal, Depends(requires(GOALS_SUBMIT))],
        idempotency_key: Annotated[
            str | None,
            Header(min_length=1, max_length=255,
                   description="Retries with the same key and body return the same goal."),
        ] = None,
    ) -> GoalAccepted:
        """Accept a goal; it is planned and run asynchronously.

        With an ``Idempotency-Key`` header, a repeat of the same body returns the goal
        of the first request (header ``Idempotent-Replayed: true``) and a different body
        is refused with 422. Keys are per tenant; a ready-made ``plan`` needs the
        ``plans:submit`` scope.
        """
        if body.plan is not None:
            principal.require(PLANS_SUBMIT)
        outcome = goals.submit(body, idempotency_key=idempotency_key,
                               tenant_id=principal.tenant_id)
        if not outcome.created:
            response.headers["Idempotent-Replayed"] = "true"
        goal_id = outcome.goal_id
        return GoalAccepted(id=goal_id, status=GoalStatus.PENDING, url=f"/v1/goals/{goal_id}")

    @app.post("/v1/goals/{goal_id}/cancel", response_model=Goal, responses=responses(404, 409))
    def cancel(goal_id: uuid.UUID,
               principal: Annotated[Principal, Depends(requires(GOALS_CANCEL))]) -> Goal:
        """Cancel a goal: dispatch stops, queued steps are revoked, the goal becomes
        ``cancelled``. 409 if it had already ended."""
        return goals.cancel_goal(goal_id, tenant_id=principal.tenant_id)

    @app.get("/v1/goals/{goal_id}", response_model=Goal, responses=responses(404))
    def read(goal_id: uuid.UUID,
             principal: Annotated[Principal, Depends(requires(GOALS_READ))]) -> Goal:
        """The goal's status, plan with per-step status and timings, answer and totals."""
        return goals.get_goal(goal_id, tenant_id=principal.tenant_id)

    app.include_router(approvals.build_router())
    app.include_router(metrics.build_router(app))
    app.include_router(probes.build_router())
    app.include_router(v1.build_router())
    app.include_router(events.build_router())
    app.include_router(sessions.build_router())
    app.include_router(memory.build_router())
    console.mount(app)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """200 when Postgres and Redis both answer, else 503 naming what is down
        (the same as ``/readyz``)."""
        return probes.readiness()

    return app


def validation_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    """Each error's ``loc``, ``msg`` and ``type`` only: never the ``input`` or ``ctx``
    FastAPI would include (they echo what the client sent). Never raises."""
    shown = []
    try:
        for error in exc.errors():
            shown.append({
                "loc": [p if isinstance(p, int) else str(p)[:64] for p in error.get("loc", ())],
                "msg": str(error.get("msg", "invalid"))[:500],
                "type": str(error.get("type", "value_error")),
            })
    except Exception:
        shown = [{"loc": ["body"], "msg": "invalid request", "type": "value_error"}]
    return shown


def _unavailable(detail: str) -> JSONResponse:
    """503 with ``Retry-After`` (seconds): the client should try again shortly."""
    return JSONResponse(status_code=503, content={"detail": detail},
                        headers={"Retry-After": str(RETRY_AFTER_S)})


app = create_app()
