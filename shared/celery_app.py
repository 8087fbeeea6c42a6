"""The one module that builds Taskforce's Celery app.

Messages carry ids only (``run_step(goal_id, step_id)``); Postgres holds every goal and
step. Building the app opens no connection and reads no settings: its configuration is
computed on first use, and the broker is reached on first publish or when a worker
starts, after any fork.
"""

from __future__ import annotations

import contextlib
from typing import Any

import kombu.pools
from celery import Celery

from shared import broker_recovery, names
from shared.settings import Settings, get_settings, on_settings_change


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for ``settings``; each one says why it is set."""
    timeout = settings.visibility_timeout_s
    visibility = {
        "visibility_timeout": timeout,
        # kombu sweeps for expired unacknowledged messages every interval x throttle
        # seconds (10 x 10 by default); sweep at a quarter of the timeout, at most every
        # 10 s, so a dead worker's messages return soon after it.
        "unacked_restore_interval": max(1, min(10, timeout // 4)),
        "unacked_restore_throttle": 1,
        # kombu's Redis channel keeps a non-blocking pool of 10 connections, and every
        # running task acknowledges through it: under the gevent pool a thousand steps
        # finishing together raised MaxConnectionsError ("Couldn't ack"), leaving their
        # messages to be delivered again. One connection per task slot at most; they
        # are opened only when that many acknowledgements overlap.
        "max_connections": max(10, settings.worker_concurrency),
    }
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
        # Redis redelivers an unacknowledged message after the visibility timeout. It
        # outlasts the longest step time limit plus a lease, so a slow step is not sent
        # again while it runs (and if it were, the live lease makes that a no-op).
        # Set for the broker and the result backend alike, as Celery reads both.
        "broker_transport_options": visibility,
        "result_backend_transport_options": visibility,
        # Hard and soft limits are set per message from the step's kind (see
        # shared.messages); these are the ceiling for any other task.
        "task_time_limit": settings.longest_step_s,
        "task_soft_time_limit": settings.longest_step_s * 0.9,
        # When the broker connection drops, Redis will redeliver the messages of tasks
        # still running; cancel them rather than finish work whose ack cannot be sent.
        # The step's lease keeps the redelivered copy from running it twice.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # Told to stop, a worker lets running steps finish for this long, then hands the
        # rest back (see shared/settings_deploy.py and taskforce_cli/supervise.py).
        "worker_soft_shutdown_timeout": settings.worker_soft_shutdown_timeout_s,
        "worker_enable_soft_shutdown_on_idle": settings.worker_enable_soft_shutdown_on_idle,
        # Publishing retries briefly; past that the caller gets the error, and a step
        # already committed as queued is re-published by the reconciler.
        "task_publish_retry_policy": {
            "max_retries": 3, "interval_start": 0.2, "interval_step": 0.5,
            "interval_max": 1.0,
        },
        "broker_connection_retry_on_startup": True,
        "task_default_queue": names.STEPS_QUEUE,
        "task_routes": {
            names.CLEAN_MEMORY: {"queue": names.MAINTENANCE_QUEUE},
            names.ROLLUP_COSTS: {"queue": names.MAINTENANCE_QUEUE},
            names.RECONCILE: {"queue": names.MAINTENANCE_QUEUE},
            names.COMPACT_SESSIONS: {"queue": names.MAINTENANCE_QUEUE},
            names.NOOP: {"queue": names.BENCH_QUEUE},
        },
        # Task events feed Flower. Workers send them (received, started, succeeded);
        # "task-sent" events from publishers are left off: they double every publish.
        "worker_send_task_events": True,
        "enable_utc": True,
    }


def create_app() -> Celery:
    """Build the Celery app, listing the task modules by name (imported by workers only).

    Its configuration is a promise (Celery's ``add_defaults`` with a callable): the
    settings are read when the app is first used (a publish, ``worker_main``, ``celery
    -A``), never at import, so importing a task module with broken settings succeeds and
    the process fails only when it starts.
    """
    # kombu's Redis transport with one fix: a step that finishes after the broker
    # connection dropped must not crash the worker when it is acknowledged (see
    # shared/broker_recovery.py for the upstream bug and when to remove this).
    broker_recovery.install()
    celery = Celery("taskforce", include=list(names.TASK_MODULES))
    celery.add_defaults(lambda: celery_config(get_settings()))
    return celery


def reconfigure() -> None:
    """Apply the current settings to :data:`app`, after an override of them
    (``shared.settings.override_settings``): a new broker URL, say.

    Before the app's first use nothing is needed (its pending configuration reads the
    settings then). After it, the new values are applied, kombu's connection and
    producer pools made with the old ones are closed (``kombu.pools.reset``), the app
    drops its pool (``app.close()``), and its ``amqp`` helper, which caches a producer
    pool and the router, is recreated on next use (it is a ``cached_property``).
    """
    if not app.configured:
        return
    app.conf.update(celery_config(get_settings()))
    kombu.pools.reset()
    app.close()
    with contextlib.suppress(AttributeError):
        del app.amqp


def send(task_name: str, *args: Any, task_id: str | None = None,
         **options: Any) -> None:
    """Publish one message for ``task_name`` with JSON arguments (ids only).

    Args:
        task_name: A name from ``shared.names``.
        *args: JSON-serialisable arguments.
        task_id: Celery task id; deterministic ids let a cancellation revoke them.
        **options: Other ``send_task`` options (``time_limit``, ``countdown``, ...).
    """
    app.send_task(task_name, args=list(args), task_id=task_id, **options)


def send_many(task_name: str, messages: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> None:
    """Publish ``(args, options)`` messages over one pooled producer."""
    if not messages:
        return
    with app.producer_or_acquire() as producer:
        for args, options in messages:
            app.send_task(task_name, args=list(args), producer=producer, **options)


def step_task_id(goal_id: str, step_id: int) -> str:
    """The Celery task id of every ``run_step`` message for one step."""
    return f"{goal_id}.step.{step_id}"


def plan_task_id(goal_id: str) -> str:
    """The Celery task id of every ``plan_goal`` message for one goal."""
    return f"{goal_id}.plan"


app = create_app()
on_settings_change(reconfigure)
