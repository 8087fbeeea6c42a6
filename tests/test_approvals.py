"""Approval of risky steps, end to end: real workers, the real gateway app, Postgres.

``deploy`` (tests/support/tools.py) requires approval; it logs each execution like
``tally``, so a test can tell whether it ever ran.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from shared import auth, goals, names
from shared.celery_app import send
from shared.domain.models import Goal, GoalRequest
from shared.settings import overridden_settings
from tests.conftest import WORKER_CONCURRENCY, WORKER_PROCESSES, wait_for_goal
from tests.support.tools import executions
from tests.support.waiting import log_count, wait_for


def tool(step_id: int, name: str, **args) -> dict:
    return {"id": step_id, "kind": "tool", "tool": name, "args": args}


def synth(step_id: int, *refs: int) -> dict:
    return {"id": step_id, "kind": "synthesize",
            "args": {"instruction": "report the values", "inputs": [f"${r}" for r in refs]}}


# tally (1) → deploy (2, needs approval) → tally (3) → synthesize (4)
RISKY_PLAN = {"steps": [
    tool(1, "tally", value=7),
    tool(2, "deploy", value="$1.value"),
    tool(3, "tally", value="$2.value"),
    synth(4, 3),
]}


@pytest.fixture()
def client(workers):
    """The gateway with authentication off: decisions are recorded as ``api``."""
    from api_gateway.app import create_app

    with overridden_settings(AUTH_ENABLED=False), TestClient(create_app()) as test_client:
        yield test_client


def submit_risky(max_replans: int = 1) -> uuid.UUID:
    return goals.submit_goal(GoalRequest(goal="deploy the value", plan=RISKY_PLAN,
                                         max_replans=max_replans))


def awaiting(goal_id: uuid.UUID, step_id: int = 2) -> Goal:
    """Wait until the step awaits approval; return the goal then."""
    return wait_for(lambda: goals.get_goal(goal_id),
                    lambda view: step_id in view.awaiting_approval,
                    message=f"step {step_id} of {goal_id} awaiting approval")


def step_row(db, goal_id: uuid.UUID, step_id: int):
    with db.connect() as connection:
        return connection.execute(
            text("SELECT status, attempt, lease_owner, lease_expires_at, approval, "
                 "approval_by, approval_reason FROM steps "
                 "WHERE goal_id = :g AND step_id = :s"), {"g": goal_id, "s": step_id}).one()


def outcomes(db, goal_id: uuid.UUID, step_id: int) -> list[str]:
    with db.connect() as connection:
        return list(connection.execute(
            text("SELECT outcome FROM step_runs WHERE goal_id = :g AND step_id = :s "
                 "ORDER BY id"), {"g": goal_id, "s": step_id}).scalars())


def test_a_step_waits_then_runs_once_approved(client, db, workers) -> None:
    goal_id = submit_risky()
    view = awaiting(goal_id)
    steps = {s.id: s for s in view.steps}
    assert view.status == "running" and view.awaiting_approval == [2]
    assert steps[1].status == "succeeded"
    assert steps[2].status == "awaiting_approval"
    assert steps[2].approval is not None and steps[2].approval.requested_at is not None
    assert steps[2].approval.decision is None
    assert steps[3].status == "pending"  # a dependent never starts before approval
    assert executions(str(goal_id))[2] == 0
    row = step_row(db, goal_id, 2)
    # Parked: no lease, no attempt used, its run ended (no worker thread holds it).
    assert (row.lease_owner, row.lease_expires_at, row.attempt) == (None, None, 0)
    assert outcomes(db, goal_id, 2) == ["awaiting_approval"]

    # A duplicate delivery while it waits does nothing.
    logs = [w.log_path for w in workers]
    send(names.RUN_STEP, str(goal_id), 2)
    wait_for(lambda: log_count(logs, f"step {goal_id}/2 not claimable"), lambda n: n >= 1,
             message="the duplicate delivery turned away")
    assert goals.get_goal(goal_id).awaiting_approval == [2]
    assert executions(str(goal_id))[2] == 0

    response = client.post(f"/v1/goals/{goal_id}/steps/2/approve",
                           json={"reason": "change ticket 42"})
    assert response.status_code == 200, response.text
    decided = response.json()
    assert decided["awaiting_approval"] == []
    approval = decided["steps"][1]["approval"]
    assert approval["decision"] == "approved" and approval["by"] == "api"
    assert approval["reason"] == "change ticket 42" and approval["at"]

    view = wait_for_goal(goal_id)
    assert view.status == "succeeded", view.error
    assert {s.id: s.result["value"] for s in view.steps if s.kind == "tool"} == {
        1: 7, 2: 7, 3: 7}
    assert executions(str(goal_id)) == {1: 1, 2: 1, 3: 1}
    assert outcomes(db, goal_id, 2) == ["awaiting_approval", "succeeded"]
    assert step_row(db, goal_id, 2).attempt == 1
    # Decided once: a second decision is a conflict.
    again = client.post(f"/v1/goals/{goal_id}/steps/2/reject")
    assert again.status_code == 409, again.text


def test_a_rejected_step_fails_its_goal_with_the_reason(client, db) -> None:
    goal_id = submit_risky(max_replans=1)
    awaiting(goal_id)
    response = client.post(f"/v1/goals/{goal_id}/steps/2/reject",
                           json={"reason": "not on a Friday"})
    assert response.status_code == 200, response.text
    view = wait_for_goal(goal_id)
    assert view.status == "failed"
    assert view.error == "step_failed: step 2: approval_rejected: not on a Friday"
    steps = {s.id: s for s in view.steps}
    assert steps[2].status == "failed"
    assert steps[2].error == "approval_rejected: not on a Friday"
    assert steps[2].approval.decision == "rejected" and steps[2].approval.by == "api"
    assert steps[3].status == steps[4].status == "skipped"
    assert {s.plan_version for s in view.steps} == {1}  # no replan: a person said no
    assert executions(str(goal_id))[2] == 0


def test_two_concurrent_decisions_one_wins_the_other_gets_409(client, db) -> None:
    goal_id = submit_risky()
    awaiting(goal_id)

    def decide(action: str) -> int:
        return client.post(f"/v1/goals/{goal_id}/steps/2/{action}").status_code

    with ThreadPoolExecutor(2) as pool:
        codes = dict(zip(("approve", "reject"), pool.map(decide, ("approve", "reject")),
                         strict=True))
    assert sorted(codes.values()) == [200, 409], codes
    winner = "approve" if codes["approve"] == 200 else "reject"
    view = wait_for_goal(goal_id)
    assert view.status == ("succeeded" if winner == "approve" else "failed"), view.error
    row = step_row(db, goal_id, 2)
    assert row.approval == ("approved" if winner == "approve" else "rejected")
    assert executions(str(goal_id))[2] == (1 if winner == "approve" else 0)


def test_unknown_goals_steps_and_undecidable_steps(client) -> None:
    goal_id = submit_risky()
    awaiting(goal_id)
    assert client.post(f"/v1/goals/{uuid.uuid4()}/steps/2/approve").status_code == 404
    assert client.post(f"/v1/goals/{goal_id}/steps/99/approve").status_code == 404
    assert client.post(f"/v1/goals/{goal_id}/steps/0/approve").status_code == 422
    assert client.post(f"/v1/goals/{goal_id}/steps/1/approve").status_code == 409  # ran
    refused = client.post(f"/v1/goals/{goal_id}/steps/2/reject", json={"reason": "a\u0000b"})
    assert refused.status_code == 422, refused.text
    assert client.post(f"/v1/goals/{goal_id}/steps/2/reject",
                       json={"reason": "x" * 1001}).status_code == 422
    assert goals.get_goal(goal_id).awaiting_approval == [2]  # nothing was decided
    # Cancelling while it waits: the goal is cancelled, the waiting step skipped.
    cancelled = client.post(f"/v1/goals/{goal_id}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["awaiting_approval"] == []
    assert [s["status"] for s in cancelled["steps"]][1:] == ["skipped"] * 3
    assert client.post(f"/v1/goals/{goal_id}/steps/2/approve").status_code == 409
    assert executions(str(goal_id))[2] == 0


def test_waiting_steps_hold_no_worker_thread(run_goal) -> None:
    # More goals waiting than the fleet has threads, and other goals still run.
    waiting = [submit_risky() for _ in range(WORKER_PROCESSES * WORKER_CONCURRENCY + 4)]
    for goal_id in waiting:
        awaiting(goal_id, 2)
    try:
        view = run_goal(GoalRequest(goal="meanwhile", plan={"steps": [
            tool(1, "tally", value=1), tool(2, "calculator", expression="$1.value + 1"),
            synth(3, 2)]}), timeout=60)
        assert view.status == "succeeded", view.error
        assert all(goals.get_goal(g).awaiting_approval == [2] for g in waiting)
    finally:
        for goal_id in waiting:
            goals.cancel_goal(goal_id)


def test_the_reconciler_rejects_a_step_that_waited_too_long(workers, db) -> None:
    from scheduler.reconciler import run_once

    goal_id = submit_risky()
    awaiting(goal_id)
    assert (goal_id, 2) not in run_once().approvals_timed_out  # default: an hour
    with overridden_settings(approval_timeout_s=0.2):
        wait_for(lambda: run_once().approvals_timed_out, lambda done: (goal_id, 2) in done,
                 message=f"the reconciler timing out step 2 of {goal_id}")
    view = goals.get_goal(goal_id)
    assert view.status == "failed"
    assert view.error == "step_failed: step 2: approval_rejected: timed out after 0.2 s"
    step = next(s for s in view.steps if s.id == 2)
    assert step.approval.decision == "rejected" and step.approval.by == "timeout"
    assert executions(str(goal_id))[2] == 0


def test_the_cli_approves_and_rejects(workers) -> None:
    from taskforce_cli.main import app

    runner = CliRunner()
    first, second = submit_risky(), submit_risky()
    awaiting(first)
    awaiting(second)
    approved = runner.invoke(app, ["approve", str(first), "2"])
    assert approved.exit_code == 0, approved.output
    assert '"decision": "approved"' in approved.output
    rejected = runner.invoke(app, ["reject", str(second), "2", "--reason", "no"])
    assert rejected.exit_code == 0, rejected.output
    assert wait_for_goal(first).status == "succeeded"
    view = wait_for_goal(second)
    assert view.error == "step_failed: step 2: approval_rejected: no"
    assert next(s for s in view.steps if s.id == 2).approval.by == "cli"
    again = runner.invoke(app, ["approve", str(first), "2"])
    assert again.exit_code == 2 and "not awaiting approval" in again.output


def test_deciding_needs_the_approve_scope_and_the_goal_s_tenant(workers) -> None:
    from api_gateway.app import create_app

    scopes = (auth.GOALS_SUBMIT, auth.GOALS_READ, auth.PLANS_SUBMIT)
    suffix = uuid.uuid4().hex[:8]
    owner = auth.create_key(tenant=f"owner-{suffix}", scopes=(*scopes, auth.STEPS_APPROVE))
    submitter = auth.create_key(tenant=f"owner-{suffix}", scopes=scopes)
    stranger = auth.create_key(tenant=f"stranger-{suffix}",
                               scopes=(*scopes, auth.STEPS_APPROVE))

    def bearer(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    with overridden_settings(AUTH_ENABLED=True), TestClient(create_app()) as client:
        response = client.post("/v1/goals", headers=bearer(submitter.key),
                               json={"goal": "deploy the value", "plan": RISKY_PLAN})
        assert response.status_code == 202, response.text
        goal_id = uuid.UUID(response.json()["id"])
        awaiting(goal_id)
        approve = f"/v1/goals/{goal_id}/steps/2/approve"
        assert client.post(approve).status_code == 401
        assert client.post(approve, headers=bearer(submitter.key)).status_code == 403
        foreign = client.post(approve, headers=bearer(stranger.key))
        assert foreign.status_code == 404 and str(goal_id) in foreign.json()["detail"]
        assert goals.get_goal(goal_id).awaiting_approval == [2]
        decided = client.post(approve, headers=bearer(owner.key))
        assert decided.status_code == 200, decided.text
        assert decided.json()["steps"][1]["approval"]["by"] == owner.key_id
    assert wait_for_goal(goal_id).status == "succeeded"
