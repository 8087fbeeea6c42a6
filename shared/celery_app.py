"""The one module that builds Taskforce's Celery app.

Messages carry ids only (``run_step(goal_id, step_id)``); Postgres holds every goal and
step. Building the app opens no connection: the broker is reached on first publish or
when a worker starts, after any fork.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from shared import constants
from shared.config import Settings, get_settings


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for ``settings``; each one says why it is set."""
    lease_s = settings.step_lease_s
    return {
        "broker_url": settings.redis_url or "redis://127.0.0.1:6379/0",
        # Postgres is the system of record: no Celery result backend holds goal state.
        "result_backend": None,
        "task_ignore_result": True,
        # JSON only: a message is data, never code (pickle would run code on load).
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # Acknowledge after the task body returns, so a worker that dies mid-step leaves
        # its message to be delivered again; the lease in Postgres makes that safe.
        "task_acks_late": True,
        # A child killed by a signal rejects (requeues) its message instead of acking it
        # as failed; the attempt cap in Postgres stops redelivery loops.
        "task_reject_on_worker_lost": True,
        # One message per free slot: a long step never sits behind another's prefetch.
        "worker_prefetch_multiplier": 1,
        # Redis redelivers an unacknowledged message after the visibility timeout; it
        # must outlast the longest step, or a slow step would run twice concurrently.
        "broker_transport_options": {"visibility_timeout": int(lease_s * 2 + 60)},
        # A worker that loses the broker stops taking new steps' work for granted: the
        # messages of running tasks will be redelivered, so cancel them.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": constants.STEPS_QUEUE,
        "task_routes": {
            constants.CLEAN_MEMORY: {"queue": constants.MAINTENANCE_QUEUE},
            constants.ROLLUP_COSTS: {"queue": constants.MAINTENANCE_QUEUE},
            constants.NOOP: {"queue": constants.BENCH_QUEUE},
        },
        # Task events feed Flower. Workers send them (received, started, succeeded);
        # "task-sent" events from publishers are left off: they double every publish.
        "worker_send_task_events": True,
        "enable_utc": True,
    }


def create_app(settings: Settings | None = None) -> Celery:
    """Build the Celery app, listing the task modules by name (imported by workers only)."""
    app = Celery("taskforce", include=list(constants.TASK_MODULES))
    app.conf.update(celery_config(settings or get_settings()))
    return app


def reconfigure(settings: Settings | None = None) -> None:
    """Apply new settings (a new broker URL, say) to :data:`app` before it connects."""
    app.conf.update(celery_config(settings or get_settings()))


def send(task_name: str, *args: Any, countdown: float | None = None) -> None:
    """Publish one message for ``task_name`` with JSON arguments (ids only)."""
    app.send_task(task_name, args=list(args), countdown=countdown)


def send_many(task_name: str, calls: list[tuple[Any, ...]]) -> None:
    """Publish one message per argument tuple in ``calls``, over one pooled producer."""
    if not calls:
        return
    with app.producer_or_acquire() as producer:
        for args in calls:
            app.send_task(task_name, args=list(args), producer=producer)


app = create_app()
