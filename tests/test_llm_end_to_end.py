"""Goals on the real OpenAI and Anthropic providers, through their SDKs, against the
wire-level simulator: the CLI, malformed plans and their repair, and the canary key."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import text

from shared.domain.models import GoalRequest
from shared.persistence.tables import metadata
from shared.settings import child_environment
from tests.conftest import CANARY_KEY, REPO

GOAL = "If Mariana Trench was 20% shallower and the Puerto Rico Trench was 20% deeper, " \
       "which one would be shallower?"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_run_json_completes_on_a_real_provider_with_tokens_and_cost(workers, provider) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "taskforce_cli.main", "run", GOAL, "--provider", provider,
         "--json", "--workers", "0", "--timeout", "120"],
        capture_output=True, text=True, timeout=180, cwd=REPO, env=child_environment(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    goal = json.loads(result.stdout)
    assert goal["status"] == "succeeded", goal["error"]
    assert goal["tokens"] > 0
    assert goal["cost_usd"] > 0
    assert [s["tool"] for s in goal["steps"]].count("search") == 2
    assert {"id", "kind", "tool", "status", "started_at", "finished_at"} <= set(goal["steps"][0])


def test_a_malformed_plan_is_repaired_once(run_goal, llm_simulator, db) -> None:
    llm_simulator.simulator.faults.script(["malformed-json", "ok"])
    view = run_goal(GoalRequest(goal="What is 17 * 23?", provider="openai"))
    assert view.status == "succeeded", view.error
    with db.connect() as connection:
        calls = connection.execute(
            text("SELECT purpose, error, input_tokens FROM llm_calls WHERE goal_id = :id "
                 "ORDER BY id"), {"id": view.id}).all()
    assert [c.purpose for c in calls] == ["plan", "plan", "synthesize"]
    assert "JSON" in calls[0].error  # the malformed answer's call, with what was wrong
    assert calls[0].input_tokens > 0  # the malformed answer was billed and recorded
    assert calls[1].error is None


def test_a_plan_still_malformed_after_its_repair_fails_the_goal(run_goal, llm_simulator) -> None:
    llm_simulator.simulator.faults.script(["malformed-json", "malformed-json"])
    view = run_goal(GoalRequest(goal="What is 17 * 23?", provider="anthropic"))
    assert view.status == "failed"
    assert view.error.startswith("plan_invalid: the answer is not valid JSON")
    assert view.error.endswith("(after one repair attempt)")
    assert view.steps == []


def test_the_key_never_appears_in_logs_or_stored_rows(workers, run_goal, db, llm_simulator) -> None:
    llm_simulator.simulator.faults.script(["500", "ok"])  # an error path too
    view = run_goal(GoalRequest(goal="Were Scott Derrickson and Ed Wood of the same "
                                     "nationality?", provider="openai"))
    assert view.status == "succeeded", view.error
    logs = "".join(worker.log_path.read_text(errors="replace") for worker in workers)
    assert f"taskforce.run_step[{view.id}.step.1]" in logs  # the logs are there to search
    assert CANARY_KEY not in logs
    with db.connect() as connection:
        for table in metadata.sorted_tables:
            dump = connection.execute(
                text(f"SELECT coalesce(string_agg(row_to_json(t)::text, ''), '') "
                     f"FROM {table.name} t")).scalar()
            assert CANARY_KEY not in dump, table.name
