"""The settings of the v1 listing, batches, event stream and web console.

A base class of :class:`shared.settings.Settings` (read through
:func:`shared.settings.get_settings`, never on its own). Every field is an environment
variable of the same name in upper case.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class ConsoleSettings(BaseSettings):
    """Bounds of ``GET /v1/goals``, ``POST /v1/batches`` and ``GET /v1/goals/{id}/events``,
    and the links the console draws.

    Attributes:
        list_max_limit: Most goals one page of ``GET /v1/goals`` returns (``limit`` above
            it is a 422).
        batch_max_goals: Most goals one ``POST /v1/batches`` may hold; the body is also
            bounded by ``MAX_REQUEST_BYTES``.
        events_poll_interval_s: How often an event stream reads its goal's steps from
            Postgres (seconds).
        events_heartbeat_s: Longest silence on an event stream before a comment line
            keeps proxies from closing it (seconds).
        events_max_duration_s: Longest one event-stream connection stays open (seconds);
            the client reconnects with ``Last-Event-ID`` and misses nothing.
        events_max_streams: Most event streams one gateway process serves at once; one
            more is a 503 with ``Retry-After``.
        flower_url: Base URL of Flower (``http://127.0.0.1:5555``); the console links each
            step to its Celery task there. Unset: no link.
        console_trace_url: A trace viewer's URL with a ``{trace_id}`` placeholder
            (``http://jaeger:16686/trace/{trace_id}``); the console links a goal that has
            a trace id to it. Unset: no link.
        console_session_hours: How long the console's login cookie lasts (hours).
    """

    list_max_limit: int = Field(default=200, ge=1, le=1_000)
    batch_max_goals: int = Field(default=1_000, ge=1, le=10_000)
    events_poll_interval_s: float = Field(default=0.5, gt=0, le=10)
    events_heartbeat_s: float = Field(default=15.0, gt=0, le=300)
    events_max_duration_s: float = Field(default=300.0, gt=0, le=3_600)
    events_max_streams: int = Field(default=200, ge=1, le=10_000)
    flower_url: str | None = Field(default=None, max_length=2_000)
    console_trace_url: str | None = Field(default=None, max_length=2_000)
    console_session_hours: float = Field(default=8.0, gt=0, le=24 * 30)
