"""Hostile tool arguments through real workers: refused promptly, without stalling the
worker's other steps; a long echo stops soon after its goal is cancelled."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from sqlalchemy import text

from shared import goals
from shared.domain.models import GoalRequest
from tests.conftest import wait_for_goal


def calc(step_id: int, expression: str) -> dict:
    return {"id": step_id, "kind": "tool", "tool": "calculator",
            "args": {"expression": expression}}


def echo(step_id: int, delay_s: float, *after: int) -> dict:
    return {"id": step_id, "kind": "tool", "tool": "echo",
            "args": {"value": step_id, "delay_s": delay_s}, "depends_on": list(after)}


def synth(step_id: int, *refs: int) -> dict:
    return {"id": step_id, "kind": "synthesize", "args": {"inputs": [f"${r}" for r in refs]}}


def step_run(db, goal_id: uuid.UUID, step_id: int):  # noqa: ANN001, ANN201
    with db.connect() as connection:
        return connection.execute(
            text("SELECT started_at, finished_at, outcome, error FROM step_runs "
                 "WHERE goal_id = :id AND step_id = :step ORDER BY id DESC LIMIT 1"),
            {"id": goal_id, "step": step_id}).first()


HOSTILE = [
    ("round(1, -10**7)", "ndigits -10000000 is outside"),
    ("round(1, -10**9)", "ndigits -1000000000 is outside"),
    ("((9**999)**999)**999", "exponent 999 is too large"),
    ("(-8)**0.5", "complex result"),
]


def test_hostile_expressions_fail_promptly_while_another_goal_keeps_going(workers, db) -> None:
    # A chain of short echo steps, spread over both workers, running meanwhile.
    chain = [echo(1, 0.3)] + [echo(i, 0.3, i - 1) for i in range(2, 9)] + [synth(9, 8)]
    steady = goals.submit_goal(GoalRequest(goal="steady", plan={"steps": chain}))
    hostile = {
        expression: goals.submit_goal(GoalRequest(
            goal=f"hostile {expression}", max_replans=0,
            plan={"steps": [calc(1, expression), synth(2, 1)]}))
        for expression, _ in HOSTILE
    }
    for expression, message in HOSTILE:
        view = wait_for_goal(hostile[expression], timeout=60)
        assert view.status == "failed", view
        assert message in view.error, view.error
        run = step_run(db, hostile[expression], 1)
        assert run.outcome == "failed"
        # Refused, not computed (hours for most of them); the bound is generous only
        # for a first call that starts the worker's tool process on a loaded host.
        assert (run.finished_at - run.started_at).total_seconds() < 30
    view = wait_for_goal(steady, timeout=60)
    assert view.status == "succeeded", view.error
    for step_id in range(1, 9):
        run = step_run(db, steady, step_id)
        # 0.3 s of delay each: no step of the steady goal was stalled behind the others.
        assert (run.finished_at - run.started_at).total_seconds() < 5, (step_id, run)


def _spawned_children(pid: int) -> list[int]:
    """Pids of ``pid``'s children started by multiprocessing's spawn."""
    children = []
    for proc in Path("/proc").iterdir():
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid and b"spawn_main" in (proc / "cmdline").read_bytes():
                children.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return children


def test_the_calculator_computes_in_a_child_of_the_worker(run_goal, db) -> None:
    view = run_goal(GoalRequest(goal="benign", plan={"steps": [calc(1, "2 ** 10"),
                                                               synth(2, 1)]}))
    assert view.status == "succeeded", view.error
    with db.connect() as connection:
        worker = connection.execute(
            text("SELECT worker FROM step_runs WHERE goal_id = :id AND step_id = 1"),
            {"id": view.id}).scalar_one()
    worker_pid = int(worker.split("/")[1])  # lease owner: host/pid/thread
    assert _spawned_children(worker_pid), "no tool process next to the worker"


def test_a_long_echo_stops_soon_after_its_goal_is_cancelled(workers, db) -> None:
    goal_id = goals.submit_goal(GoalRequest(goal="long echo", plan={"steps": [
        echo(1, 25.0), synth(2, 1)]}))
    deadline = time.monotonic() + 30
    while (step_run(db, goal_id, 1) is None) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert step_run(db, goal_id, 1) is not None, "the echo step never started"
    cancelled_at = time.monotonic()
    assert goals.cancel_goal(goal_id).status == "cancelled"
    deadline = cancelled_at + 10
    while step_run(db, goal_id, 1).finished_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run = step_run(db, goal_id, 1)
    assert run.finished_at is not None, "the echo step still holds its worker thread"
    assert time.monotonic() - cancelled_at < 5
    assert run.outcome == "failed" and run.error.startswith("cancelled:"), run
    assert goals.get_goal(goal_id).status == "cancelled"


def test_echo_refuses_a_delay_above_its_cap(run_goal) -> None:
    view = run_goal(GoalRequest(goal="too slow", max_replans=0, plan={"steps": [
        echo(1, 31.0), synth(2, 1)]}))
    assert view.status == "failed"
    assert "above the limit of 30 s" in view.error


def test_the_cancellation_hook_reads_the_goal_status_at_most_once_per_interval(db) -> None:
    from worker.cancellation import GoalCancellationCheck

    goal_id = goals.submit_goal(GoalRequest(goal="watched", plan={"steps": [
        echo(1, 20.0), synth(2, 1)]}))
    throttled = GoalCancellationCheck(db, goal_id, interval_s=600)
    assert throttled() is False
    goals.cancel_goal(goal_id)
    assert throttled() is False  # answered from its last read, no query
    fresh = GoalCancellationCheck(db, goal_id, interval_s=0.0)
    assert fresh() is True
    assert fresh() is True  # stays True
    assert GoalCancellationCheck(db, uuid.uuid4())() is True  # no such goal
