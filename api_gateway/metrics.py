"""The gateway's telemetry: its setup at startup, and ``GET /metrics`` for Prometheus.

At startup (the application's lifespan) the gateway sets telemetry up as the
``gateway`` role and, when tracing is on, instruments FastAPI, so that ``POST /v1/goals``
opens the trace its goal runs in. ``/metrics`` answers in the Prometheus text format:
the gateway's own OpenTelemetry metrics (HTTP server durations, when tracing is on) and
three fleet-wide gauges computed from Postgres at scrape time:

* ``taskforce_goals{taskforce_goal_status=...}``: goals in each status;
* ``taskforce_steps_queued``: steps queued and not yet claimed;
* ``taskforce_steps_queued_oldest_age_seconds``: how long the oldest of them has waited.

The workers' metrics (step durations, dispatch latency, LLM tokens, cost, durations,
rate-limit waits, reconciler repairs, lease losses) are pushed over OTLP to a collector
(``OTEL_EXPORTER_OTLP_ENDPOINT``), from which Prometheus scrapes or receives them.

The figures cover every tenant, so reading them takes the ``metrics:read`` scope, or the
operator's ``METRICS_TOKEN`` as a bearer token (a scraper needs no tenant's key).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from api_gateway.auth import authenticate, bearer
from shared import telemetry
from shared.auth import METRICS_READ
from shared.domain.models import GoalStatus
from shared.errors import PermissionDeniedError
from shared.settings import get_settings
from shared.telemetry.setup import instrumentation_enabled

log = logging.getLogger(__name__)
_gauges_lock = threading.Lock()
_gauges_pid: int | None = None
_QUEUE_CACHE_S = 1.0  # one query serves both queue gauges of a scrape


def start_telemetry(app: FastAPI) -> None:
    """Set the gateway's telemetry up (once per process) and, with tracing on,
    instrument ``app`` (the middleware stack is rebuilt on the next request)."""
    telemetry.setup("gateway")
    _register_fleet_gauges()
    if instrumentation_enabled("fastapi") and not getattr(
            app, "_is_instrumented_by_opentelemetry", False):
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,metrics",
                                           exclude_spans=["receive", "send"])
        app.middleware_stack = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The gateway's lifespan: telemetry on at startup, flushed at shutdown."""
    start_telemetry(app)
    yield
    telemetry.shutdown()


def _fleet_reader(connection_work: Any) -> Any:
    from shared.persistence.db import get_engine

    with get_engine().connect() as connection:
        return connection_work(connection)


class _QueueFigures:
    """The queue's figures, read at most once per :data:`_QUEUE_CACHE_S`."""

    def __init__(self) -> None:
        self._at = 0.0
        self._value = (0, 0.0)
        self._lock = threading.Lock()

    def get(self) -> tuple[int, float]:
        from shared.persistence.telemetry import step_queue

        with self._lock:
            if time.monotonic() - self._at > _QUEUE_CACHE_S:
                self._value = _fleet_reader(step_queue)
                self._at = time.monotonic()
            return self._value


def _register_fleet_gauges() -> None:
    """The three Postgres-backed gauges, on the gateway's meter (once per process)."""
    from opentelemetry.metrics import Observation

    from shared.persistence.telemetry import goals_by_status

    global _gauges_pid
    with _gauges_lock:
        if _gauges_pid == os.getpid():
            return
        _gauges_pid = os.getpid()
        meter = telemetry.meter()
        queue = _QueueFigures()

        def goals(_: Any) -> Iterable[Observation]:
            try:
                counts = _fleet_reader(goals_by_status)
            except Exception:
                log.warning("reading goals by status for /metrics failed", exc_info=True)
                return []
            return [Observation(counts.get(s.value, 0), {"taskforce.goal.status": s.value})
                    for s in GoalStatus]

        def queued(index: int) -> Any:
            def observe(_: Any) -> Iterable[Observation]:
                try:
                    return [Observation(queue.get()[index])]
                except Exception:
                    log.warning("reading the step queue for /metrics failed", exc_info=True)
                    return []
            return observe

        meter.create_observable_gauge("taskforce.goals", [goals], unit="{goal}",
                                      description="Goals in each status, every tenant")
        meter.create_observable_gauge("taskforce.steps.queued", [queued(0)], unit="{step}",
                                      description="Steps queued and not yet claimed")
        meter.create_observable_gauge("taskforce.steps.queued.oldest_age", [queued(1)],
                                      unit="s", description="Wait of the oldest queued step")


def metrics_reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Admit the operator's ``METRICS_TOKEN`` or a key with the ``metrics:read`` scope.

    Raises:
        HTTPException: 401 without a valid key or token, 403 for a key without the scope.
    """
    token = get_settings().metrics_token
    if token is not None and credentials is not None and hmac.compare_digest(
            credentials.credentials.encode(), token.get_secret_value().encode()):
        return
    principal = authenticate(request, credentials)
    try:
        principal.require(METRICS_READ)
    except PermissionDeniedError as exc:
        raise HTTPException(status_code=403, detail=exc.detail()) from None


def build_router(app: FastAPI) -> APIRouter:
    """The ``GET /metrics`` route of ``app``."""
    router = APIRouter()

    @router.get("/metrics", dependencies=[Depends(metrics_reader)],
                response_class=Response, responses={401: {}, 403: {}})
    def scrape() -> Response:
        """Prometheus text format: the gateway's metrics and the fleet-wide gauges."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        start_telemetry(app)
        registry = telemetry.prometheus_registry()
        body = generate_latest(registry) if registry is not None else b""
        return Response(content=body, media_type=CONTENT_TYPE_LATEST)

    return router
