"""Probes: the gateway's /livez and /readyz, the worker's heartbeat file and
``taskforce worker-health``, and the backlog KEDA scales workers on."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from shared import heartbeat
from shared.persistence import goals as goal_store
from shared.persistence import keys as key_store
from shared.persistence.backlog import KEDA_QUERY, read_backlog
from shared.settings import overridden_settings
from taskforce_cli.main import app as cli
from worker import planner


def test_livez_answers_without_any_server_and_readyz_names_what_is_down() -> None:
    from api_gateway.app import create_app

    with overridden_settings(REDIS_URL="redis://127.0.0.1:1/0",
                             DATABASE_URL="postgresql://nobody@127.0.0.1:1/none"):
        client = TestClient(create_app())
        assert client.get("/livez").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "down": ["database", "broker"]}


def test_readyz_is_ok_when_postgres_and_redis_answer(services) -> None:
    from api_gateway.app import create_app

    client = TestClient(create_app())
    assert client.get("/readyz").json() == {"status": "ok"}
    assert client.get("/healthz").json() == {"status": "ok"}


def test_the_heartbeat_age_is_that_of_the_last_touch(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "worker.heartbeat"
    assert heartbeat.age_s(path) is None
    heartbeat.touch(path)
    assert 0 <= heartbeat.age_s(path) < 5
    os.utime(path, (time.time() - 120, time.time() - 120))
    assert 115 < heartbeat.age_s(path) < 130


def test_a_starting_worker_forgets_the_old_heartbeat_and_touches_a_new_one(
        tmp_path: Path) -> None:
    from worker import health

    path = tmp_path / "worker.heartbeat"
    with overridden_settings(WORKER_HEARTBEAT_FILE=str(path)):
        heartbeat.touch(path)
        health.forget()
        assert heartbeat.age_s(path) is None
        health.beat()
        assert heartbeat.age_s(path) < 5


def test_worker_health_fails_on_a_missing_or_stale_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "worker.heartbeat"
    runner = CliRunner()
    with overridden_settings(WORKER_HEARTBEAT_FILE=str(path)):
        missing = runner.invoke(cli, ["worker-health", "--max-age", "60"])
        assert missing.exit_code == 1 and "no worker heartbeat" in missing.output
        heartbeat.touch(path)
        assert runner.invoke(cli, ["worker-health", "--max-age", "60"]).exit_code == 0
        os.utime(path, (time.time() - 90, time.time() - 90))
        stale = runner.invoke(cli, ["worker-health", "--max-age", "60"])
        assert stale.exit_code == 1 and "old" in stale.output


def test_the_backlog_counts_queued_steps_and_goals_awaiting_a_planner(db) -> None:
    with db.connect() as connection:
        before = read_backlog(connection)
    plan = {"steps": [
        {"id": 1, "kind": "tool", "tool": "echo", "args": {"text": "a"}},
        {"id": 2, "kind": "tool", "tool": "echo", "args": {"text": "b"}},
        {"id": 3, "kind": "synthesize", "args": {"inputs": ["$1", "$2"]}},
    ]}
    # Stored without a plan_goal message (as if its publish were still to come), so the
    # suite's workers, which may be running, cannot plan them before the count below.
    with db.begin() as connection:
        planned, _ = goal_store.create_goal(
            connection, text_="backlog with a plan", provider="sim", model="sim-planner-1",
            metadata={}, requested_plan=plan, tenant_id=key_store.DEFAULT_TENANT_ID)
        unplanned, _ = goal_store.create_goal(
            connection, text_="backlog to plan", provider="sim", model="sim-planner-1",
            metadata={}, tenant_id=key_store.DEFAULT_TENANT_ID)
    assert isinstance(planned, uuid.UUID) and isinstance(unplanned, uuid.UUID)
    with db.connect() as connection:
        planning = read_backlog(connection)
    planner.plan_goal(str(planned))  # in this process: its two roots are queued
    with db.connect() as connection:
        after = read_backlog(connection)
        keda = connection.execute(text(KEDA_QUERY)).scalar_one()  # what KEDA runs
    assert after.work_items == (after.queued_steps + after.running_steps
                                + after.planning_goals)
    assert keda == after.work_items
    assert planning.planning_goals - before.planning_goals == 2
    # The two roots wait as queued (or run, if a worker of another test took them) and
    # the other goal still awaits its planner.
    assert (after.queued_steps + after.running_steps) - (
        before.queued_steps + before.running_steps) >= 2
    assert after.planning_goals - before.planning_goals >= 1
