"""Goals on the real OpenAI and Anthropic providers, through their SDKs, against the
wire-level simulator: the CLI, malformed plans and their repair, the canary key, and
each datum sent once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import text

from shared.domain.models import GoalRequest
from shared.llm import roles
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


def test_a_goal_states_its_data_once_at_the_wire_and_bills_what_was_sent(
        run_goal, llm_simulator, db) -> None:
    goal = "Were Scott Derrickson and Ed Wood of the same nationality? (wire check 17)"
    view = run_goal(GoalRequest(goal=goal, provider="openai"))
    assert view.status == "succeeded", view.error
    calls = [c for c in list(llm_simulator.simulator.received) if c.data.get("goal") == goal]
    assert sorted(c.purpose for c in calls) == ["plan", "synthesize"]
    for call in calls:  # what the SDK sent, as the simulator received it
        assert (call.system + call.user).count(goal) == 1
        assert call.system == roles.SYSTEM_PROMPTS[call.purpose]
    synthesis = next(c for c in calls if c.purpose == "synthesize")
    outputs = [s.result for s in view.steps if s.kind == "tool"]
    for output in outputs:  # each step output once, JSON-encoded, inside the data section
        encoded = json.dumps(output, sort_keys=True, separators=(",", ":"),
                             ensure_ascii=False).replace("<", "\\u003c")
        assert synthesis.user.count(encoded) == 1
        assert synthesis.user.index(encoded) < synthesis.user.index("</data>")
    with db.connect() as connection:
        billed = connection.execute(
            text("SELECT purpose, input_tokens FROM llm_calls WHERE goal_id = :id"),
            {"id": view.id}).all()
    assert sorted((c.purpose, c.input_tokens) for c in calls) == sorted(
        (b.purpose, b.input_tokens) for b in billed)
