"""``GET /v1/goals/{goal_id}/events``: server-sent events of a goal's step changes.

Postgres is the truth: the stream reads the goal's steps every
``EVENTS_POLL_INTERVAL_S`` seconds and sends each change of a step's status or attempt
once, numbered by ``steps.change_seq`` (a trigger draws it from one sequence, migration
0012; the workers' SQL is unchanged). Events:

* ``step`` (``id:`` the change number): ``goal_id``, ``step_id``, ``kind``, ``tool``,
  ``status``, ``attempt``, ``worker``, ``started_at``, ``finished_at``, ``error``;
* ``goal`` when the goal's status changes: ``goal_id``, ``status``, ``error``,
  ``finished_at``;
* ``end``, the goal's final state, after which the server closes the stream.

A comment line (``: keepalive``) goes out after ``EVENTS_HEARTBEAT_S`` seconds of
silence. One connection lasts at most ``EVENTS_MAX_DURATION_S`` seconds; the client
(a browser's ``EventSource`` does it by itself) reconnects with ``Last-Event-ID`` and
gets every step changed since. The first answer of a stream is every step's current
state (after ``Last-Event-ID``, if given), so a client needs no other read to start.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at runtime.
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from api_gateway.auth import requires
from api_gateway.errors import responses
from shared import goal_queries
from shared.auth import GOALS_READ, Principal
from shared.domain.models import GoalStatus
from shared.settings import get_settings

RETRY_MS = 2_000  # how long a client waits before reconnecting (milliseconds)
ERROR_CHARS = 1_000  # characters of a step's error in an event (the goal has it all)
MAX_EVENT_ID = 2**63 - 1  # change_seq is a Postgres bigint

Reader = Annotated[Principal, Depends(requires(GOALS_READ))]


class StreamCount:
    """Event streams open in this process (bounded by ``EVENTS_MAX_STREAMS``)."""

    open = 0


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _event(kind: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _step_data(goal_id: uuid.UUID, row: dict[str, Any]) -> dict[str, Any]:
    error = row["error"]
    return {"goal_id": str(goal_id), "step_id": row["step_id"], "kind": row["kind"],
            "tool": row["tool"], "status": row["status"], "attempt": row["attempt"],
            "worker": row["lease_owner"], "started_at": _iso(row["started_at"]),
            "finished_at": _iso(row["finished_at"]),
            "error": error[:ERROR_CHARS] if error else None}


def _goal_data(goal_id: uuid.UUID, state: dict[str, Any]) -> dict[str, Any]:
    return {"goal_id": str(goal_id), "status": state["status"], "error": state["error"],
            "finished_at": _iso(state["finished_at"])}


async def stream(goal_id: uuid.UUID, after_seq: int) -> AsyncIterator[str]:
    """The event stream of one goal from change number ``after_seq`` on (see the module
    docstring); ends when the goal ends or after ``EVENTS_MAX_DURATION_S``."""
    settings = get_settings()
    StreamCount.open += 1
    try:
        started = last_sent = time.monotonic()
        sent: dict[int, int] = {}  # step id -> change number last sent
        goal_status = None
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            state, changes = await anyio.to_thread.run_sync(
                lambda: goal_queries.read_changes(goal_id, after_seq=after_seq))
            out = []
            for row in changes:  # a change committed out of number order is still sent
                if sent.get(row["step_id"]) != row["change_seq"]:
                    sent[row["step_id"]] = row["change_seq"]
                    out.append(_event("step", _step_data(goal_id, row), row["change_seq"]))
            if state is not None and state["status"] != goal_status:
                goal_status = state["status"]
                out.append(_event("goal", _goal_data(goal_id, state)))
            if state is None or GoalStatus(state["status"]).is_final:
                end = _goal_data(goal_id, state) if state else {"goal_id": str(goal_id),
                                                                 "status": None}
                out.append(_event("end", end))
                yield "".join(out)
                return
            now = time.monotonic()
            if out:
                yield "".join(out)
                last_sent = now
            elif now - last_sent >= settings.events_heartbeat_s:
                yield ": keepalive\n\n"
                last_sent = now
            if now - started >= settings.events_max_duration_s:
                return  # the client reconnects with Last-Event-ID
            await anyio.sleep(settings.events_poll_interval_s)
    finally:
        StreamCount.open -= 1


def build_router() -> APIRouter:
    """The route ``GET /v1/goals/{goal_id}/events``."""
    router = APIRouter(tags=["goals"])

    @router.get("/v1/goals/{goal_id}/events", response_class=StreamingResponse, responses={
        **responses(404),
        200: {"description": "Server-sent events: step, goal, end",
              "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
    async def events(
        goal_id: uuid.UUID, principal: Reader,
        last_event_id: Annotated[int | None, Header(ge=0, le=MAX_EVENT_ID)] = None,
    ) -> StreamingResponse:
        """Live step changes of a goal as server-sent events, until it ends. Resume
        with ``Last-Event-ID``."""
        await run_in_threadpool(goal_queries.check_owner, goal_id, principal.tenant_id)
        if StreamCount.open >= get_settings().events_max_streams:
            return JSONResponse(status_code=503, headers={"Retry-After": str(RETRY_MS // 1000)},
                                content={"detail": "too many event streams, try again shortly"})
        return StreamingResponse(
            stream(goal_id, last_event_id or 0), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return router
