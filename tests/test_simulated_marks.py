"""Simulated output says so wherever it appears: the CLI's answer and summary lines,
``run --json`` and batch result objects, the HTTP goal object, episodes, and the LLM
call of a malformed answer that came from the vendor simulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.domain.models import GoalRequest
from shared.settings import child_environment
from taskforce_cli.batch import BatchItem, run_batch
from taskforce_cli.display import summary_table
from taskforce_cli.results import summarize
from tests.conftest import REPO

GOAL = "What is 17 * 23?"


def taskforce_run(*args: str) -> subprocess.CompletedProcess:
    """``taskforce run`` against the session's servers and workers (none of its own)."""
    return subprocess.run(
        [sys.executable, "-m", "taskforce_cli.main", "run", *args, "--workers", "0",
         "--timeout", "120"],
        capture_output=True, text=True, timeout=180, cwd=REPO,
        env=child_environment({"COLUMNS": "200"}),
    )


def test_run_marks_a_simulated_answer_and_model(workers) -> None:
    result = taskforce_run(GOAL)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    answer = [line for line in lines if line.startswith("answer")]
    assert len(answer) == 1 and answer[0].startswith("answer [simulated]: "), lines
    assert "391" in answer[0]
    assert "model: sim/sim-planner-1 (simulated)" in lines


def test_run_json_carries_provider_model_and_simulated(workers) -> None:
    result = taskforce_run(GOAL, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    goal = json.loads(result.stdout)
    assert goal["status"] == "succeeded", goal["error"]
    assert (goal["provider"], goal["model"], goal["simulated"]) == (
        "sim", "sim-planner-1", True)


def test_batch_results_and_summary_carry_the_model_and_the_mark(workers, tmp_path: Path) -> None:
    items = [BatchItem(input_id=str(n), request=GoalRequest(goal=f"What is {n} * 3?"))
             for n in (4, 5)]
    output = tmp_path / "results.jsonl"
    results = run_batch(items, output=output, timeout_s=120, max_in_flight=2)
    written = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["status"] for r in written] == ["succeeded", "succeeded"]
    assert all((r["provider"], r["model"], r["simulated"]) == ("sim", "sim-planner-1", True)
               for r in written)
    summary = summarize(results)
    assert summary["models"] == {"sim/sim-planner-1": {"goals": 2, "simulated": 2}}
    rows = list(summary_table(summary).columns[1].cells)
    assert "sim/sim-planner-1 (simulated)" in rows


def test_a_goal_and_its_episode_say_they_were_simulated(run_goal, db) -> None:
    view = run_goal(GoalRequest(goal=GOAL))
    assert view.status == "succeeded", view.error
    assert view.simulated and view.provider == "sim"
    with db.connect() as connection:
        episode = connection.execute(
            text("SELECT episode FROM episodes WHERE goal_id = :id"), {"id": view.id}
        ).scalar_one()
    assert episode["goal"]["simulated"] is True
    assert episode["goal"]["provider"] == "sim"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_malformed_answer_from_the_simulator_is_recorded_simulated(
    run_goal, llm_simulator, db, provider: str
) -> None:
    llm_simulator.simulator.faults.script(["malformed-json", "ok"])
    view = run_goal(GoalRequest(goal=GOAL, provider=provider))
    assert view.status == "succeeded", view.error
    with db.connect() as connection:
        calls = connection.execute(
            text("SELECT error, simulated FROM llm_calls WHERE goal_id = :id ORDER BY id"),
            {"id": view.id}).all()
    assert calls[0].error is not None and "JSON" in calls[0].error  # the malformed one
    assert [c.simulated for c in calls] == [True] * len(calls)
    assert view.provider == provider and view.simulated
