"""ReAct goals (``mode="react"``) through real workers: one LLM turn per action, each
action a step run by the step machinery, the answer as the DAG gives it, the turn
bound, malformed turns, redelivered turns, and a ReAct goal through the OpenAI SDK
against the wire simulator."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from sqlalchemy import text

from shared import goals, names
from shared.celery_app import send
from shared.domain.models import GoalRequest
from shared.settings import child_environment, get_settings
from tests.conftest import GOALS_DIR, REPO
from tests.support.waiting import log_count, wait_for

HOTPOT = "Were Scott Derrickson and Ed Wood of the same nationality?"
TRENCHES = ("If Mariana Trench was 20% shallower and the Puerto Rico Trench was 20% deeper, "
            "which one would be shallower?")


def _goal(set_file: str, goal_id: str) -> str:
    """The goal text of ``goal_id`` in ``examples/goals/<set_file>`` (never its answer)."""
    for line in (GOALS_DIR / set_file).read_text().splitlines():
        row = json.loads(line)
        if row["id"] == goal_id:
            return row["goal"]
    raise AssertionError(f"no goal {goal_id}")


def _calls(db, goal_id: uuid.UUID) -> list[tuple[str, int | None, str | None]]:
    with db.connect() as connection:
        return [tuple(r) for r in connection.execute(
            text("SELECT purpose, step_id, error FROM llm_calls WHERE goal_id = :id "
                 "ORDER BY id"), {"id": goal_id})]


def _tools(view) -> list[str | None]:
    return [s.tool if s.kind == "tool" else s.kind for s in view.steps]


def test_a_react_goal_takes_one_action_per_turn_and_answers_like_the_dag(
        run_goal, db, fresh_tenant) -> None:
    # A fresh tenant: the DAG goal is planned, not given an earlier test's plan.
    dag = run_goal(GoalRequest(goal=TRENCHES), tenant_id=fresh_tenant)
    react = run_goal(GoalRequest(goal=TRENCHES, mode="react"), tenant_id=fresh_tenant)
    assert dag.status == "succeeded", dag.error
    assert react.status == "succeeded", react.error
    assert react.mode == "react" and dag.mode == "dag"
    assert react.answer == dag.answer
    # The same lookups and calculations as the DAG's tool steps, one per turn, in order,
    # then the answer as a synthesize step.
    dag_actions = [s.tool for s in dag.steps if s.kind == "tool"]
    assert _tools(react) == dag_actions + ["synthesize"]
    assert [s.id for s in react.steps] == list(range(1, len(react.steps) + 1))
    assert all(s.status == "succeeded" for s in react.steps)
    for earlier, later in zip(react.steps, react.steps[1:]):
        assert earlier.finished_at <= later.started_at  # sequential: never overlapping
    # Each action ran with literal values from earlier observations (no step reference
    # left): the calculator's input holds the searched number.
    calculator = next(s for s in react.steps if s.tool == "calculator")
    assert "$" not in calculator.args["expression"]
    assert calculator.result["value"] is not None
    # One metered LLM call per turn, recorded against the step it created.
    calls = _calls(db, react.id)
    assert [(purpose, step) for purpose, step, _ in calls] == [
        ("react", s.id) for s in react.steps]
    assert react.tokens > 0 and react.simulated
    with db.connect() as connection:
        plan = connection.execute(text("SELECT plan FROM plans WHERE goal_id = :id"),
                                  {"id": react.id}).scalar_one()
        episode = connection.execute(text("SELECT episode FROM episodes WHERE goal_id = :id"),
                                     {"id": react.id}).scalar_one()
    assert [s["id"] for s in plan["steps"]] == [s.id for s in react.steps]
    assert episode["goal"]["mode"] == "react"


def test_a_two_entity_question_looks_each_up_in_turn(run_goal, fresh_tenant) -> None:
    dag = run_goal(GoalRequest(goal=HOTPOT), tenant_id=fresh_tenant)
    react = run_goal(GoalRequest(goal=HOTPOT, mode="react"), tenant_id=fresh_tenant)
    assert react.status == "succeeded", react.error
    assert _tools(react) == ["search", "search", "synthesize"]
    assert [s.args["query"] for s in react.steps[:2]] == [
        s.args["query"] for s in dag.steps if s.kind == "tool"]
    assert react.answer == dag.answer


def test_turns_are_bounded(run_goal, db) -> None:
    cap = get_settings().react_max_turns
    goal = _goal("parallelqa.jsonl", "parallelqa-88")  # 10 actions before its answer
    view = run_goal(GoalRequest(goal=goal, mode="react"), timeout=120)
    assert view.status == "failed"
    assert view.error == f"react_turns_exhausted: no answer after {cap} turns"
    assert len(view.steps) == cap
    assert all(s.kind == "tool" and s.status == "succeeded" for s in view.steps)
    assert [purpose for purpose, _, _ in _calls(db, view.id)] == ["react"] * cap


def test_a_ready_made_plan_cannot_run_as_react() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="ready-made plan runs in mode dag"):
        GoalRequest(goal="x", mode="react", plan={"steps": [{"id": 1, "kind": "synthesize"}]})
    with pytest.raises(ValidationError):
        GoalRequest(goal="x", mode="sequential")


def test_a_malformed_turn_is_repaired_once_then_fails_the_goal_readably(
    run_goal, llm_simulator, db
) -> None:
    llm_simulator.simulator.faults.script(["malformed-json", "malformed-json"])
    view = run_goal(GoalRequest(goal=HOTPOT, provider="openai", mode="react"))
    assert view.status == "failed"
    assert view.error.startswith("react_invalid: turn 1: the answer is not valid JSON")
    assert view.error.endswith("(after one repair attempt)")
    assert view.steps == []
    calls = _calls(db, view.id)
    assert [c[0] for c in calls] == ["react", "react"] and all(c[2] for c in calls)


def test_a_react_goal_runs_through_the_openai_sdk_against_the_wire_simulator(
    workers, llm_simulator
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "taskforce_cli.main", "run", HOTPOT, "--provider", "openai",
         "--mode", "react", "--json", "--workers", "0", "--timeout", "120"],
        capture_output=True, text=True, timeout=180, cwd=REPO, env=child_environment(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    goal = json.loads(result.stdout)
    assert goal["status"] == "succeeded", goal["error"]
    assert goal["mode"] == "react"
    assert [s["tool"] or s["kind"] for s in goal["steps"]] == ["search", "search", "synthesize"]
    assert goal["tokens"] > 0 and goal["cost_usd"] > 0
    turns = [call for call in llm_simulator.simulator.received
             if call.purpose == "react" and call.data.get("goal") == HOTPOT][-3:]
    # Each turn sent the observations so far, once, in its data section.
    assert [len(call.data["history"]) for call in turns] == [0, 1, 2]
    assert "observation" in turns[2].data["history"][1]


def test_a_redelivered_turn_is_harmless(run_goal, workers, db) -> None:
    view = run_goal(GoalRequest(goal=HOTPOT, mode="react"))
    assert view.status == "succeeded", view.error
    logs = [worker.log_path for worker in workers]
    calls_before = _calls(db, view.id)
    # Every turn again (taken already), the next one (the goal has ended), and the
    # goal's plan_goal: none may call the LLM or add a step.
    for turn in (1, 2, 3, 4):
        send(names.REACT_TURN, str(view.id), turn)
    send(names.PLAN_GOAL, str(view.id))
    wait_for(lambda: (log_count(logs, f"of goal {view.id} not claimable"),
                      log_count(logs, f"goal {view.id} is not pending")),
             lambda seen: seen[0] >= 4 and seen[1] >= 1,
             message="the redelivered turns turned away")
    after = goals.get_goal(view.id)
    assert after.status == "succeeded" and after.answer == view.answer
    assert [s.id for s in after.steps] == [s.id for s in view.steps]
    assert _calls(db, view.id) == calls_before


def test_a_turn_delivered_while_its_action_runs_waits_for_it(workers, db) -> None:
    goal_id = goals.submit_goal(GoalRequest(goal=HOTPOT, mode="react"))
    logs = [worker.log_path for worker in workers]
    # While step 1 (a search, about 0.5 s) runs, deliver turn 2 twice: both find an
    # unfinished step and turn away; the real turn 2 follows step 1's commit.
    wait_for(lambda: [s.status for s in goals.get_goal(goal_id).steps],
             lambda statuses: statuses[:1] == ["running"], message="step 1 running")
    send(names.REACT_TURN, str(goal_id), 2)
    send(names.REACT_TURN, str(goal_id), 2)
    view = wait_for(lambda: goals.get_goal(goal_id), lambda v: v.status.is_final,
                    timeout=60, message="goal ended")
    wait_for(lambda: log_count(logs, f"turn 2 of goal {goal_id} not claimable"),
             lambda n: n >= 2, message="the early turns turned away")
    assert view.status == "succeeded", view.error
    assert _tools(view) == ["search", "search", "synthesize"]
    assert len(_calls(db, goal_id)) == 3


def test_the_mode_is_chosen_per_goal_over_http(workers) -> None:
    from fastapi.testclient import TestClient

    from api_gateway.app import create_app
    from shared.settings import overridden_settings

    with overridden_settings(AUTH_ENABLED=False), TestClient(create_app()) as client:
        response = client.post("/v1/goals", json={"goal": HOTPOT, "mode": "react"})
        assert response.status_code == 202, response.text
        goal_id = response.json()["id"]
        body = wait_for(lambda: client.get(f"/v1/goals/{goal_id}").json(),
                        lambda b: b["status"] in ("succeeded", "failed", "cancelled"),
                        timeout=60, message="goal ended")
        assert body["status"] == "succeeded", body["error"]
        assert body["mode"] == "react"
        assert [s["tool"] or s["kind"] for s in body["steps"]] == [
            "search", "search", "synthesize"]
        refused = client.post("/v1/goals", json={"goal": HOTPOT, "mode": "sequential"})
        assert refused.status_code == 422 and "'dag' or 'react'" in refused.text
        planned = client.post("/v1/goals", json={"goal": HOTPOT, "mode": "react", "plan": {
            "steps": [{"id": 1, "kind": "synthesize", "args": {}}]}})
        assert planned.status_code == 422 and "ready-made plan" in planned.text


def test_the_reconciler_publishes_a_turn_whose_message_was_lost(
    run_goal, db, monkeypatch
) -> None:
    from scheduler import reconciler

    done = run_goal(GoalRequest(goal=HOTPOT, mode="react"))
    assert done.status == "succeeded", done.error
    # Back to the moment after step 2 committed, as if the worker died before it
    # published turn 3: running, steps 1 and 2 finished (an hour ago), no step 3.
    with db.begin() as connection:
        for statement in (
            "DELETE FROM steps WHERE goal_id = :id AND step_id = 3",
            "DELETE FROM episodes WHERE goal_id = :id",
            "UPDATE plans SET plan = jsonb_set(plan, '{steps}', (plan->'steps') - 2) "
            "WHERE goal_id = :id",
            "UPDATE steps SET finished_at = now() - interval '1 hour' WHERE goal_id = :id",
            "UPDATE goals SET status = 'running', answer = NULL, finished_at = NULL "
            "WHERE id = :id",
        ):
            connection.execute(text(statement), {"id": done.id})
    monkeypatch.setenv("RECONCILE_STALE_S", "1")
    get_settings.cache_clear()
    try:
        repairs = reconciler.run_once()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert (done.id, 3) in repairs.react_turns
    view = wait_for(lambda: goals.get_goal(done.id), lambda v: v.status.is_final,
                    timeout=60, message="the goal ended again")
    assert view.status == "succeeded", view.error
    assert view.answer == done.answer
    assert _tools(view) == ["search", "search", "synthesize"]
