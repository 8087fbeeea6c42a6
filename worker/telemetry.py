"""The worker's telemetry hooks, wired through Celery signals (imported by
:mod:`worker.tasks`).

Telemetry is set up once the pool is ready: in ``worker_init`` for the threads, gevent
and solo pools (tasks run in the worker's own process), in ``worker_process_init`` for
each prefork child (span processors' threads do not survive a fork). It is flushed in
``worker_process_shutdown`` and ``worker_shutdown`` (and ``atexit``). Each task start
names its goal and step on the Celery instrumentation's ``run`` span and records the
dispatch latency carried by the message's header (:data:`shared.messages.DISPATCH_HEADER`).
"""

from __future__ import annotations

import time
from typing import Any

from celery.signals import (
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)

from shared import names, telemetry
from shared.messages import DISPATCH_HEADER, KIND_HEADER
from shared.telemetry import goal_trace, instruments


def _is_prefork(worker: Any) -> bool:
    pool = getattr(worker, "pool_cls", None)
    name = pool if isinstance(pool, str) else getattr(pool, "__module__", "")
    return "prefork" in str(name)


def _set_up() -> None:
    telemetry.setup("worker")
    # Connected after the Celery instrumentation's own handler, so that its ``run`` span
    # is the current one when this runs.
    task_prerun.connect(_task_started, weak=False, dispatch_uid="taskforce-telemetry")


@worker_init.connect
def _worker_init(sender: Any = None, **_: object) -> None:
    if not _is_prefork(sender):
        _set_up()


@worker_process_init.connect
def _worker_process_init(**_: object) -> None:
    _set_up()


@worker_process_shutdown.connect
@worker_shutdown.connect
def _flush(**_: object) -> None:
    telemetry.shutdown()


def _task_started(sender: Any = None, task: Any = None, args: Any = None,
                  **_: object) -> None:
    """Name the goal and step on the task's span; record its dispatch latency."""
    if task is None:
        return
    request = task.request
    published = request.get(DISPATCH_HEADER)
    if isinstance(published, int | float):
        instruments.record_dispatch_latency(request.get(KIND_HEADER), time.time() - published)
    if task.name in (names.RUN_STEP, names.PLAN_GOAL) and args:
        goal_trace.annotate(args[0], args[1] if task.name == names.RUN_STEP and
                            len(args) > 1 else None)
