"""Celery tasks of the worker: thin wrappers that pass ids to :mod:`worker.planner` and
:mod:`worker.execution`."""

from __future__ import annotations

import logging
import os
import threading

import redis
from celery.signals import worker_init, worker_process_init, worker_process_shutdown

from shared import names
from shared.celery_app import app
from shared.errors import ConfigurationError
from shared.persistence.db import dispose_engine
from shared.settings import get_settings
from worker import (
    execution,
    health,  # noqa: F401  (its signal handlers: the liveness heartbeat)
    planner,
    react,
)
from worker import telemetry as _telemetry_hooks  # noqa: F401  (connects its signals)

log = logging.getLogger(__name__)
_bench_clients = threading.local()


def check_redis_eviction_policy(url: str) -> str | None:
    """Return why ``url``'s Redis is unsafe as a broker, or None if it is safe.

    Redis with any ``maxmemory-policy`` but ``noeviction`` may delete queued messages
    under memory pressure, losing steps silently; with ``noeviction`` it refuses new
    writes instead, which publishers see and retry. A Redis that forbids ``CONFIG GET``
    (some managed services) cannot be checked and is let through with a warning.
    """
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.exceptions.ResponseError:
        log.warning("cannot read Redis maxmemory-policy (CONFIG GET refused); make sure "
                    "it is noeviction")
        return None
    finally:
        client.close()
    if policy != "noeviction":
        return (f"Redis maxmemory-policy is {policy!r}: it may evict queued messages; set it "
                "to noeviction (or REDIS_REQUIRE_NOEVICTION=false to run anyway)")
    return None


@worker_init.connect
def _check_broker(**_: object) -> None:
    """Refuse to start on a Redis that may evict messages (see REDIS_REQUIRE_NOEVICTION)."""
    settings = get_settings()
    if not settings.redis_require_noeviction or not settings.redis_url:
        return
    problem = check_redis_eviction_policy(settings.redis_url)
    if problem:
        raise ConfigurationError(problem)


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    """A forked pool child must not reuse its parent's database connections."""
    dispose_engine()


@worker_process_shutdown.connect
def _close_connections(**_: object) -> None:
    dispose_engine()


@app.task(name=names.PLAN_GOAL)
def plan_goal(goal_id: str) -> None:
    """Plan the goal ``goal_id`` (UUID text) and dispatch its root steps."""
    planner.plan_goal(goal_id)


@app.task(name=names.RUN_STEP)
def run_step(goal_id: str, step_id: int) -> None:
    """Run step ``step_id`` of goal ``goal_id`` and dispatch what it made ready."""
    execution.run_step(goal_id, step_id)


@app.task(name=names.REACT_TURN)
def react_turn(goal_id: str, turn: int) -> None:
    """Take turn ``turn`` of the ReAct goal ``goal_id`` (its idempotency key)."""
    react.react_turn(goal_id, turn)


@app.task(name=names.NOOP)
def noop(counter_key: str) -> None:
    """The raw-Celery baseline of ``taskforce bench overhead``: nothing but one Redis
    ``INCR`` of ``counter_key``, so the benchmark can tell when every task has run."""
    _bench_counter().incr(counter_key)


def _bench_counter() -> redis.Redis:
    """A Redis client for this thread and process (made on first use, never at import)."""
    client = getattr(_bench_clients, "client", None)
    if client is None or getattr(_bench_clients, "pid", None) != os.getpid():
        client = redis.Redis.from_url(get_settings().redis_url or "")
        _bench_clients.client, _bench_clients.pid = client, os.getpid()
    return client
