"""The gevent pool: one real worker process keeps hundreds of slow I/O-bound steps in
flight, their leases renewed, while a CPU-bound isolated tool still runs in its own
child and is killed at its limit."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from sqlalchemy import select

from shared import goals, names
from shared.celery_app import app as celery_app
from shared.domain.models import GoalRequest
from shared.persistence.tables import step_runs, steps
from shared.persistence.timings import running_steps_by_owner
from taskforce_cli import fleet
from tests.conftest import wait_for_goal
from tests.support.waiting import wait_for

GOALS = 22
WIDTH = 16  # the default fan-out cap: 22 goals x 16 parallel steps = 352 steps at once
DELAY_S = 20.0  # past six leases (STEP_LEASE_S=3 below), and long enough for all 352 to start
LEASE_S = 3.0


def fan_out(width: int, delay_s: float) -> dict:
    tools = [{"id": i, "kind": "tool", "tool": "echo",
              "args": {"value": i, "delay_s": delay_s}} for i in range(1, width + 1)]
    final = {"id": width + 1, "kind": "synthesize",
             "args": {"inputs": [f"${i}" for i in range(1, width + 1)]}}
    return {"steps": [*tools, final]}


@pytest.fixture(scope="module")
def gevent_worker(services, llm_simulator):
    """One ``taskforce worker --pool gevent --concurrency 400`` process; any other worker
    of the session stops consuming steps meanwhile, so every step runs in this one."""
    others = [name for reply in celery_app.control.ping(timeout=1.0) for name in reply]
    if others:
        celery_app.control.cancel_consumer(names.STEPS_QUEUE, destination=others, reply=True)
    log_dir = Path(tempfile.mkdtemp(prefix="taskforce-gevent-"))
    worker = fleet.start_worker(
        "gevent1", log_dir=log_dir, pool="gevent", concurrency=400, queues=names.STEPS_QUEUE,
        env={"TOOL_MODULES": "tests.support.tools,tests.support.cpu_tools",
             "TOOL_CPU_TIME_LIMIT_S": "2", "STEP_LEASE_S": str(LEASE_S),
             "MAX_REPLANS": "0", "DB_POOL_SIZE": "10"})
    try:
        fleet.wait_for_workers([worker])
        yield worker
    finally:
        worker.stop()
        if others:
            celery_app.control.add_consumer(names.STEPS_QUEUE, destination=others, reply=True)



def test_hundreds_of_slow_steps_are_in_flight_at_once_in_one_process(gevent_worker, db) -> None:
    ids = [goals.submit_goal(GoalRequest(goal=f"gevent in flight {n}",
                                         plan=fan_out(WIDTH, DELAY_S)), check=False)
           for n in range(GOALS)]

    def running() -> dict[str, int]:
        with db.connect() as connection:
            return running_steps_by_owner(connection)

    # At one moment, one process holds 300+ steps running (each under a live lease).
    peak = wait_for(running, lambda counts: max(counts.values(), default=0) >= 300,
                    timeout=150, interval=0.2, message="300 steps running in one process")
    process, count = max(peak.items(), key=lambda item: item[1])
    assert count >= 300, peak
    # Past three leases, no step lost its lease: the heartbeat renewed all of them.
    for goal_id in ids:
        view = wait_for_goal(goal_id, timeout=300)
        assert view.status == "succeeded", (view.status, view.error)
    with db.connect() as connection:
        runs = connection.execute(
            select(step_runs.c.worker, step_runs.c.outcome, step_runs.c.attempt)
            .where(step_runs.c.goal_id.in_(ids))).all()
        spans = connection.execute(
            select(steps.c.started_at, steps.c.finished_at)
            .where(steps.c.goal_id.in_(ids), steps.c.kind == "tool")).all()
    assert len(runs) == GOALS * (WIDTH + 1)
    assert {outcome for _, outcome, _ in runs} == {"succeeded"}
    assert {attempt for _, _, attempt in runs} == {1}
    assert {"/".join(w.split("/")[:2]) for w, _, _ in runs} == {process}
    # Each step ran its whole delay, past three lease lengths, on its first attempt.
    assert min((f - s).total_seconds() for s, f in spans) >= DELAY_S
    # Every message was acknowledged: none is left for Redis to deliver again.
    assert "Couldn't ack" not in gevent_worker.log_path.read_text(errors="replace")


def test_an_isolated_cpu_tool_works_and_is_killed_at_its_limit_under_gevent(
        gevent_worker, db) -> None:
    def spin(forever: bool) -> dict:
        return {"steps": [
            {"id": 1, "kind": "tool", "tool": "spin", "args": {"forever": forever}},
            {"id": 2, "kind": "tool", "tool": "echo", "args": {"value": 2, "delay_s": 1}},
            {"id": 3, "kind": "synthesize", "args": {"inputs": ["$1", "$2"]}},
        ]}

    runaway = goals.submit_goal(GoalRequest(goal="spin forever", plan=spin(True)), check=False)
    works = goals.submit_goal(GoalRequest(goal="spin once", plan=spin(False)), check=False)
    done = wait_for_goal(works, timeout=120)
    assert done.status == "succeeded", done.error
    with db.connect() as connection:
        result = connection.execute(select(steps.c.result).where(
            steps.c.goal_id == works, steps.c.step_id == 1)).scalar_one()
        owner = connection.execute(select(step_runs.c.worker).where(
            step_runs.c.goal_id == works, step_runs.c.step_id == 1)).scalar_one()
    # It ran in a child process of the gevent worker, not in the worker itself.
    assert str(result["pid"]) != owner.split("/")[1]
    stopped = wait_for_goal(runaway, timeout=120)
    assert stopped.status == "failed"
    assert "time limit exceeded" in (stopped.error or ""), stopped.error
