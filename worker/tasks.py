"""Celery tasks of the worker: thin wrappers that pass ids to :mod:`worker.engine`."""

from __future__ import annotations

from celery.signals import worker_process_init, worker_process_shutdown

from shared import constants
from shared.celery_app import app
from shared.persistence.db import dispose_engine
from shared.redis_client import bench_counter
from worker import engine


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    """A forked pool child must not reuse its parent's database connections."""
    dispose_engine()


@worker_process_shutdown.connect
def _close_connections(**_: object) -> None:
    dispose_engine()


@app.task(name=constants.PLAN_GOAL)
def plan_goal(goal_id: str) -> None:
    """Plan the goal ``goal_id`` (UUID text) and dispatch its root steps."""
    engine.plan_goal(goal_id)


@app.task(name=constants.RUN_STEP)
def run_step(goal_id: str, step_id: int) -> None:
    """Run step ``step_id`` of goal ``goal_id`` and dispatch what it made ready."""
    engine.run_step(goal_id, step_id)


@app.task(name=constants.NOOP)
def noop(counter_key: str) -> None:
    """The raw-Celery baseline of ``taskforce bench overhead``: nothing but one Redis
    ``INCR`` of ``counter_key``, so the benchmark can tell when every task has run."""
    bench_counter().incr(counter_key)
