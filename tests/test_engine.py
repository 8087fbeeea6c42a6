"""The DAG engine end to end: real Redis, real Postgres, real worker processes."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from shared import names
from shared.celery_app import send
from shared.domain.models import GoalRequest
from tests.support.tools import executions as tally_executions
from tests.support.waiting import log_count, wait_for, wait_until


def tool(step_id: int, name: str, **args) -> dict:
    return {"id": step_id, "kind": "tool", "tool": name, "args": args}


def synth(step_id: int, *refs: int) -> dict:
    return {"id": step_id, "kind": "synthesize",
            "args": {"instruction": "report the values", "inputs": [f"${r}" for r in refs]}}


def runs_of(db, goal_id: uuid.UUID) -> dict[int, list[tuple]]:
    with db.connect() as connection:
        rows = connection.execute(
            text("SELECT step_id, worker, started_at, finished_at, outcome FROM step_runs "
                 "WHERE goal_id = :id ORDER BY id"), {"id": goal_id}).all()
    runs: dict[int, list[tuple]] = {}
    for row in rows:
        runs.setdefault(row.step_id, []).append(row)
    return runs


def executions(goal_id: uuid.UUID, step_id: int) -> int:
    return tally_executions(str(goal_id))[step_id]


def test_a_diamond_dag_completes_with_the_right_results(run_goal) -> None:
    view = run_goal(GoalRequest(goal="diamond", plan={"steps": [
        tool(1, "echo", value=6),
        tool(2, "calculator", expression="$1.value * 7"),
        tool(3, "calculator", expression="$1.value + 4"),
        tool(4, "calculator", expression="$2.value - $3.value"),
        synth(5, 4),
    ]}))
    assert view.status == "succeeded", view.error
    results = {step.id: step.result for step in view.steps}
    assert results[2]["value"] == 42
    assert results[3]["value"] == 10
    assert results[4]["value"] == 32
    assert view.answer.startswith(names.SIMULATED_MARK)
    assert all(step.status == "succeeded" for step in view.steps)
    assert view.tokens > 0  # the synthesis call is counted even with a ready-made plan


def test_a_wide_fan_out_and_fan_in_complete(run_goal, db) -> None:
    width = 15
    expression = " + ".join(f"$${i}.value" for i in range(1, width + 1)).replace("$$", "$")
    view = run_goal(GoalRequest(goal="fan out", plan={"steps": [
        *[tool(i, "echo", value=i) for i in range(1, width + 1)],
        tool(width + 1, "calculator", expression=expression),
        synth(width + 2, width + 1),
    ]}))
    assert view.status == "succeeded", view.error
    by_id = {step.id: step for step in view.steps}
    assert by_id[width + 1].result["value"] == width * (width + 1) // 2
    assert max(s.finished_at for s in view.steps[:width]) <= by_id[width + 1].started_at
    assert all(len(r) == 1 for r in runs_of(db, view.id).values())


def test_independent_steps_overlap_in_time_across_worker_processes(run_goal, db) -> None:
    width = 16  # two processes of eight threads: all sixteen only fit using both
    view = run_goal(GoalRequest(goal="overlap", plan={"steps": [
        *[tool(i, "echo", value=i, delay_s=1.0) for i in range(1, width + 1)],
        synth(width + 1, *range(1, width + 1)),
    ]}))
    assert view.status == "succeeded", view.error
    lookups = [s for s in view.steps if s.kind == "tool"]
    latest_start = max(s.started_at for s in lookups)
    earliest_end = min(s.finished_at for s in lookups)
    assert latest_start < earliest_end, "some step started only after another had finished"
    processes = {run.worker.rsplit("/", 1)[0] for r in runs_of(db, view.id).values() for run in r}
    assert len(processes) == 2, processes


def test_the_same_step_message_delivered_twice_runs_the_tool_once(
    run_goal, db, workers
) -> None:
    from shared import goals

    goal_id = goals.submit_goal(GoalRequest(goal="twice", plan={"steps": [
        {"id": 1, "kind": "tool", "tool": "tally", "args": {"value": 1, "delay_s": 0.5}},
        synth(2, 1),
    ]}))
    logs = [worker.log_path for worker in workers]

    def refused(step_id: int) -> int:
        """Deliveries of the step a worker found not claimable (worker log lines)."""
        return log_count(logs, f"step {goal_id}/{step_id} not claimable")

    # Wait until step 1 runs, then deliver its message again, twice, while it runs.
    wait_until(lambda: executions(goal_id, 1), message=f"step 1 of {goal_id} running")
    send(names.RUN_STEP, str(goal_id), 1)
    send(names.RUN_STEP, str(goal_id), 1)
    wait_for(lambda: goals.get_goal(goal_id).status, lambda status: status.is_final,
             message=f"goal {goal_id} ended")
    # And once more after it committed; then wait until a worker has turned every
    # extra delivery away (each logs that it found its step not claimable).
    send(names.RUN_STEP, str(goal_id), 1)
    send(names.RUN_STEP, str(goal_id), 2)
    wait_for(lambda: (refused(1), refused(2)), lambda seen: seen[0] >= 3 and seen[1] >= 1,
             message="the duplicate deliveries (3 of step 1, 1 of step 2) turned away")
    view = goals.get_goal(goal_id)
    assert view.status == "succeeded", view.error
    assert executions(goal_id, 1) == 1
    runs = runs_of(db, goal_id)
    assert [run.outcome for run in runs[1]] == ["succeeded"]
    assert [run.outcome for run in runs[2]] == ["succeeded"]
    with db.connect() as connection:
        calls = connection.execute(
            text("SELECT count(*) FROM llm_calls WHERE goal_id = :id AND purpose = 'synthesize'"),
            {"id": goal_id}).scalar()
    assert calls == 1


def test_a_failed_step_is_recorded_with_its_error_and_ends_the_goal(run_goal) -> None:
    view = run_goal(GoalRequest(goal="fails", max_replans=0, plan={"steps": [
        tool(1, "echo", value=0),
        tool(2, "calculator", expression="10 / $1.value"),
        tool(3, "echo", value="never", delay_s=0.0),
        {"id": 4, "kind": "synthesize", "args": {"inputs": ["$2"]}, "depends_on": [3]},
    ]}))
    assert view.status == "failed"
    assert view.error.startswith("step_failed: step 2: division by zero")
    by_id = {step.id: step for step in view.steps}
    assert by_id[2].status == "failed"
    assert "division by zero" in by_id[2].error
    assert by_id[4].status == "skipped"


def test_an_invalid_plan_fails_the_goal_before_any_step_is_stored(run_goal, db) -> None:
    view = run_goal(
        GoalRequest(goal="bad plan", plan={"steps": [tool(1, "teleport"), synth(2, 1)]}),
        check=False,
    )
    assert view.status == "failed"
    assert view.error.startswith("plan_invalid: step 1: unknown tool 'teleport'")
    assert view.steps == []
    with db.connect() as connection:
        assert connection.execute(
            text("SELECT count(*) FROM plans WHERE goal_id = :id"), {"id": view.id}
        ).scalar() == 0


def test_a_planned_goal_writes_its_episode(run_goal, db, fresh_tenant) -> None:
    view = run_goal(GoalRequest(goal="What is 17 * 23?"), tenant_id=fresh_tenant)
    assert view.status == "succeeded", view.error
    with db.connect() as connection:
        episode = connection.execute(
            text("SELECT episode FROM episodes WHERE goal_id = :id"), {"id": view.id}
        ).scalar_one()
    assert episode["goal"]["status"] == "succeeded"
    assert [c["purpose"] for c in episode["llm_calls"]] == ["plan", "synthesize"]
    assert all(c["simulated"] for c in episode["llm_calls"])
    assert episode["total_tokens"] == view.tokens > 0
    assert {r["step_id"] for r in episode["runs"]} == {s.id for s in view.steps}
    assert len(episode["plan"]["steps"]) == len(view.steps)


def test_a_replan_after_a_failed_step_reuses_the_completed_steps(run_goal, db) -> None:
    view = run_goal(GoalRequest(goal="replan", max_replans=1, plan={"steps": [
        tool(1, "tally", value=0),
        tool(2, "tally", value=5),
        tool(3, "calculator", expression="$2.value / $1.value"),
        synth(4, 3),
    ]}))
    assert view.status == "succeeded", view.error
    by_id = {step.id: step for step in view.steps}
    assert by_id[3].status == "failed" and "division by zero" in by_id[3].error
    assert by_id[4].status == "skipped"
    replanned = [s for s in view.steps if s.plan_version == 2]
    assert [s.kind for s in replanned] == ["synthesize"]
    assert replanned[0].status == "succeeded"
    assert set(replanned[0].dependencies) == {1, 2}
    assert tally_executions(str(view.id)) == {1: 1, 2: 1}  # reused, not run again
    with db.connect() as connection:
        purposes = connection.execute(
            text("SELECT purpose FROM llm_calls WHERE goal_id = :id ORDER BY id"),
            {"id": view.id}).scalars().all()
    assert purposes == ["plan", "synthesize"]  # the replan, then the new synthesis


def test_a_goal_over_its_token_budget_stops_mid_goal_with_its_spend_recorded(
    run_goal, db
) -> None:
    from shared.llm import roles
    from shared.llm.ratelimit import estimate_tokens

    goal = "Check a value, then report it"
    output = {"value": 7, "delay_s": 0.0, "simulated": True}  # what echo returns
    criteria = "a number"
    # The budget is exactly the validation call's worst case: it fits, the synthesis
    # after it cannot.
    budget = estimate_tokens(roles.validate_request(
        goal, model="sim-planner-1", criteria=criteria, target=output))
    view = run_goal(GoalRequest(goal=goal, max_tokens=budget, plan={"steps": [
        tool(1, "echo", value=7),
        {"id": 2, "kind": "validate", "args": {"target": "$1", "criteria": criteria}},
        {"id": 3, "kind": "synthesize", "args": {"inputs": ["$1"]}, "depends_on": [2]},
    ]}))
    assert view.status == "failed"
    assert view.error.startswith("budget_exceeded: the call may use")
    assert 0 < view.tokens <= budget
    with db.connect() as connection:
        calls = connection.execute(
            text("SELECT purpose FROM llm_calls WHERE goal_id = :id"), {"id": view.id}
        ).scalars().all()
        reserved = connection.execute(
            text("SELECT reserved_tokens FROM goals WHERE id = :id"), {"id": view.id}
        ).scalar()
    assert calls == ["validate"]  # spent and recorded; the synthesis was never called
    assert reserved == 0
    assert {s.id: s.status for s in view.steps} == {1: "succeeded", 2: "succeeded",
                                                    3: "failed"}
