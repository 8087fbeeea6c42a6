"""Probes for an orchestrator: ``GET /livez`` (the process answers) and ``GET /readyz``
(it can serve: Postgres and Redis answer), unauthenticated like ``/healthz``.

Kubernetes restarts a container whose liveness probe fails and takes a pod out of its
Service while its readiness probe fails. A gateway whose database is down must not be
restarted (that would not bring the database back, and every pod would restart at
once), only taken out of rotation: so liveness checks nothing outside the process, and
readiness checks both servers with one cheap round trip each (``SELECT 1``, ``PING``),
each bounded by a short timeout.
"""

from __future__ import annotations

import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from shared.persistence.db import ping as ping_database
from shared.settings import get_settings

REDIS_PING_TIMEOUT_S = 1.0


def dependency_problems() -> list[str]:
    """What is out of reach: ``"database"`` and/or ``"broker"``; empty when both answer."""
    problems = []
    try:
        ping_database()
    except Exception:
        problems.append("database")
    try:
        client = redis.Redis.from_url(get_settings().redis_url or "",
                                      socket_timeout=REDIS_PING_TIMEOUT_S,
                                      socket_connect_timeout=REDIS_PING_TIMEOUT_S)
        try:
            client.ping()
        finally:
            client.close()
    except Exception:
        problems.append("broker")
    return problems


def readiness() -> JSONResponse:
    """200 ``{"status": "ok"}`` when Postgres and Redis both answer, else 503 naming
    what is down (``{"status": "unavailable", "down": ["database"]}``)."""
    problems = dependency_problems()
    if problems:
        return JSONResponse(status_code=503, content={"status": "unavailable",
                                                      "down": problems})
    return JSONResponse(status_code=200, content={"status": "ok"})


def build_router() -> APIRouter:
    """The ``/livez`` and ``/readyz`` routes."""
    router = APIRouter()

    @router.get("/livez")
    def livez() -> dict[str, str]:
        """200 whenever the process serves HTTP; checks no other server."""
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        """200 when Postgres and Redis answer, else 503 naming what is down."""
        return readiness()

    return router
