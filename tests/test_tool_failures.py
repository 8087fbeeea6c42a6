"""Whatever a tool raises or returns, its step ends ``failed`` with a readable error,
promptly, through the real workers: never stuck ``running`` or lost to a lease."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from shared.domain.models import GoalRequest
from shared.errors import RetryableToolError
from shared.settings import get_settings
from shared.tools.base import ToolContext
from shared.tools.search import SEARCH


def misbehave(step_id: int, mode: str) -> dict:
    return {"id": step_id, "kind": "tool", "tool": "misbehave", "args": {"mode": mode}}


def synth(step_id: int, *refs: int) -> dict:
    return {"id": step_id, "kind": "synthesize",
            "args": {"instruction": "report the values", "inputs": [f"${r}" for r in refs]}}


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("db_error", "misbehave failed: OperationalError: server closed the connection "
                     "unexpectedly"),
        ("bug", "misbehave failed: KeyError: 'missing'"),
        ("complex", "result of misbehave is not JSON: Object of type complex is not JSON "
                    "serializable"),
        ("object", "result of misbehave is not JSON: Object of type object"),
        ("nan", "result of misbehave is not JSON: Out of range float values"),
        ("nul", "result of misbehave is not JSON: it holds a NUL character"),
    ],
)
def test_a_misbehaving_tool_fails_its_step_with_a_readable_error(
    run_goal, db, mode: str, error: str
) -> None:
    started = time.monotonic()
    view = run_goal(GoalRequest(goal=f"misbehave {mode}", max_replans=0,
                                plan={"steps": [misbehave(1, mode), synth(2, 1)]}))
    took = time.monotonic() - started
    assert view.status == "failed"
    assert view.error.startswith(f"step_failed: step 1: {error}"), view.error
    by_id = {step.id: step for step in view.steps}
    assert by_id[1].status == "failed" and by_id[1].error.startswith(error)
    assert "Traceback" not in by_id[1].error and "\n" not in by_id[1].error
    assert by_id[2].status == "skipped"
    # Promptly: well before a lost step's lease would run out.
    assert took < get_settings().step_lease_s / 2, took
    with db.connect() as connection:
        outcomes = connection.execute(
            text("SELECT outcome FROM step_runs WHERE goal_id = :id AND step_id = 1"),
            {"id": view.id}).scalars().all()
        running = connection.execute(
            text("SELECT count(*) FROM steps WHERE goal_id = :id AND status = 'running'"),
            {"id": view.id}).scalar()
    assert outcomes == ["failed"]  # one claim, no worker_lost
    assert running == 0


def test_a_failed_database_tool_step_is_replanned(run_goal) -> None:
    view = run_goal(GoalRequest(goal="misbehave then replan", max_replans=1,
                                plan={"steps": [misbehave(1, "db_error"), synth(2, 1)]}))
    by_id = {(step.plan_version, step.id): step for step in view.steps}
    assert by_id[(1, 1)].status == "failed"
    assert "OperationalError" in by_id[(1, 1)].error
    assert any(step.plan_version == 2 for step in view.steps)  # it was replanned
    assert all(step.status != "running" for step in view.steps)
    assert view.status == "succeeded" or view.error.startswith("step_failed:"), view.error


def test_search_on_an_unreachable_database_is_a_retryable_tool_error_without_secrets() -> None:
    engine = create_engine("postgresql+psycopg://someone:hunter2@127.0.0.1:9/none",
                           connect_args={"connect_timeout": 2})
    try:
        with pytest.raises(RetryableToolError) as info:
            SEARCH.call({"query": "trench"}, ToolContext("g", 1, 1, engine=engine))
    finally:
        engine.dispose()
    message = str(info.value)
    assert message.startswith("search failed: OperationalError: ")
    assert "hunter2" not in message and "\n" not in message
