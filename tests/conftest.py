"""Test fixtures: a real Redis, a real PostgreSQL and real Celery worker processes.

With ``REDIS_URL`` and ``DATABASE_URL`` set, the suite uses those servers (in a fresh
database it creates and drops); otherwise it starts embedded ones once per session.
Workers are separate ``taskforce worker`` processes, exactly as in production.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# Fast simulated LLM latencies for the suite (20x shorter), but lookups keep a realistic
# 0.5 s round trip (10 s x 0.05): parallel lookups must be long enough, next to the
# dispatch jitter of a loaded two-core machine, for their overlap to be observable.
os.environ.setdefault("SIM_LATENCY_SCALE", "0.05")
os.environ.setdefault("SIM_TOOL_LATENCY_S", "10")
# ReAct goals in the suite stop after 8 turns (the default is 24), so a long goal shows
# the bound quickly (tests/test_react.py).
os.environ.setdefault("REACT_MAX_TURNS", "8")
os.environ["TOOL_MODULES"] = "tests.support.tools"
os.environ.setdefault(
    "TASKFORCE_TEST_TALLY_LOG",
    str(Path(tempfile.mkdtemp(prefix="taskforce-tally-")) / "tally.log"),
)

from shared.domain.models import Goal, GoalRequest
from shared.settings import get_settings, override_settings
from taskforce_cli import fleet as fleet_module

REPO = Path(__file__).resolve().parents[1]
GOALS_DIR = REPO / "examples" / "goals"
WORKER_PROCESSES = 2
WORKER_CONCURRENCY = 8


def _fresh_database(url: str) -> tuple[str, callable]:
    """Create a throwaway database on the server of ``url``; return its URL and a dropper."""
    server = make_url(url)
    name = f"taskforce_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return server.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session")
def services() -> Iterator[dict[str, str]]:
    """Environment pointing at a real Redis and a real, migrated, empty Postgres."""
    settings = get_settings()
    drop = None
    if settings.redis_url and settings.database_url:
        database_url, drop = _fresh_database(settings.database_url)
        override_settings(database_url=database_url)
        context = fleet_module.servers()
    else:
        directory = Path(tempfile.mkdtemp(prefix="taskforce-test-"))
        directory.chmod(0o755)
        context = fleet_module.servers(directory)
    with context:
        fleet_module.load_sample_corpus()
        env = {"REDIS_URL": get_settings().redis_url, "DATABASE_URL": get_settings().database_url}
        import redis

        client = redis.Redis.from_url(env["REDIS_URL"])
        client.flushdb()
        client.close()
        yield env
    if drop is not None:
        drop()


CANARY_KEY = f"sk-canary-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def llm_simulator() -> Iterator[object]:
    """``taskforce sim-llm`` on loopback for the session, with the real providers pointed
    at it and canary keys (which must never show up in logs or stored rows)."""
    from taskforce_cli.vendor_sim.config import SimulatorConfig
    from taskforce_cli.vendor_sim.server import running

    with running(SimulatorConfig(latency_s={}, retry_after_s=1.0)) as simulator:
        os.environ.update({
            "OPENAI_BASE_URL": simulator.openai_base_url,
            "ANTHROPIC_BASE_URL": simulator.base_url,
            "OPENAI_API_KEY": CANARY_KEY,
            "ANTHROPIC_API_KEY": CANARY_KEY,
        })
        get_settings.cache_clear()
        yield simulator


@pytest.fixture(scope="session")
def workers(services: dict[str, str], llm_simulator) -> Iterator[list[fleet_module.WorkerProcess]]:
    """Two real worker processes (threads pool) consuming the steps queue."""
    log_dir = Path(tempfile.mkdtemp(prefix="taskforce-test-logs-"))
    started = [
        fleet_module.start_worker(f"test{i + 1}", log_dir=log_dir,
                                  concurrency=WORKER_CONCURRENCY)
        for i in range(WORKER_PROCESSES)
    ]
    try:
        fleet_module.wait_for_workers(started)
        yield started
    finally:
        for worker in started:
            worker.stop()


def wait_for_goal(goal_id: uuid.UUID, *, timeout: float = 60.0) -> Goal:
    """Poll a goal until it ends; fail the test if it has not after ``timeout`` seconds."""
    from shared import goals

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = goals.get_goal(goal_id)
        if view.status.is_final:
            return view
        time.sleep(0.05)
    raise AssertionError(f"goal {goal_id} still {view.status} after {timeout} s")


@pytest.fixture()
def run_goal(workers):
    """Submit a goal and wait for it to end: ``run_goal(request, timeout=60,
    tenant_id=None) -> Goal`` (the default tenant unless ``tenant_id`` is given)."""
    from shared import goals

    def run(request: GoalRequest, *, timeout: float = 60.0, check: bool = True,
            tenant_id: uuid.UUID | None = None) -> Goal:
        goal_id = (goals.submit_goal(request, check=check) if tenant_id is None
                   else goals.submit(request, check=check, tenant_id=tenant_id).goal_id)
        return wait_for_goal(goal_id, timeout=timeout)

    return run


@pytest.fixture()
def fresh_tenant(services) -> uuid.UUID:
    """A new tenant with no goals yet: its goals are planned, never given an earlier
    goal's plan by plan reuse (which looks at the same tenant's episodes only)."""
    from shared import auth

    key = auth.create_key(tenant=f"fresh-{uuid.uuid4().hex[:8]}").key
    return auth.verify_key(key).tenant_id


@pytest.fixture()
def db(services):
    """This process's engine on the test database."""
    from shared.persistence.db import get_engine

    return get_engine()
