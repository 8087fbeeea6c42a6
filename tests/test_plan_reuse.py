"""Episodic memory through real workers: finished goals are indexed, the planner gets
its tenant's similar successful episodes as examples, a goal of the same template
reuses an earlier plan without a planning call, and a wrong reuse is caught (by
validation, or by a failing step and the replan that follows)."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from shared import auth, goals
from shared.domain.models import GoalRequest
from shared.settings import overridden_settings
from tests.conftest import wait_for_goal


def new_tenant() -> uuid.UUID:
    """A fresh tenant (no episodes yet)."""
    key = auth.create_key(tenant=f"reuse-{uuid.uuid4().hex[:8]}").key
    return auth.verify_key(key).tenant_id


def run(goal: str, tenant: uuid.UUID, *, provider: str | None = None, session=None):
    request = GoalRequest(goal=goal, provider=provider, session_id=session)
    return wait_for_goal(goals.submit(request, tenant_id=tenant).goal_id)


def plan_calls(db, goal_id: uuid.UUID) -> int:
    with db.connect() as connection:
        return connection.execute(text(
            "SELECT count(*) FROM llm_calls WHERE goal_id = :id AND purpose = 'plan'"),
            {"id": goal_id}).scalar()


def test_a_goal_of_the_same_template_reuses_the_plan_without_a_planning_call(
        workers, llm_simulator, db) -> None:
    tenant = new_tenant()
    first = run("What is 17 * 23?", tenant)
    assert first.status == "succeeded" and first.reused_plan_from is None
    assert plan_calls(db, first.id) == 1
    second = run("What is 40 * 5?", tenant)
    assert second.status == "succeeded", second.error
    assert second.reused_plan_from == first.id
    assert plan_calls(db, second.id) == 0
    assert second.steps[0].args == {"expression": "40 * 5"}
    assert second.answer.endswith(" 200")
    other_model = run("What is 7 * 8?", tenant, provider="openai")
    assert other_model.reused_plan_from is None  # a plan serves goals of its own model
    lookups = run("Were Scott Derrickson and Ed Wood of the same nationality?", tenant)
    again = run("Were Hayao Miyazaki and Tim Burton of the same nationality?", tenant)
    assert again.reused_plan_from == lookups.id and plan_calls(db, again.id) == 0
    assert [s.args.get("query") for s in again.steps if s.kind == "tool"] == [
        "Hayao Miyazaki", "Tim Burton"]
    with db.connect() as connection:
        indexed = connection.execute(text(
            "SELECT template, reusable FROM episode_index WHERE goal_id = :id"),
            {"id": second.id}).one()
    assert indexed == ("what is <N1> * <N2>?", True)


def test_plans_and_examples_never_cross_tenants(workers, llm_simulator, db) -> None:
    owner, stranger = new_tenant(), new_tenant()
    mine = run("Were Scott Derrickson and Ed Wood of the same nationality?", owner,
               provider="openai")
    assert mine.status == "succeeded", mine.error
    theirs = run("Was Ed Wood an American film director?", stranger, provider="openai")
    assert theirs.status == "succeeded", theirs.error
    # The stranger's goal of the owner's template is planned, not reused.
    planned = run("Were Hayao Miyazaki and Tim Burton of the same nationality?", stranger)
    assert planned.reused_plan_from is None and plan_calls(db, planned.id) == 1
    goal = "Was Ed Wood born in Poughkeepsie?"
    follow = run(goal, owner, provider="openai")
    assert follow.status == "succeeded", follow.error
    data = next(c.data for c in reversed(llm_simulator.simulator.received)
                if c.purpose == "plan" and c.data.get("goal") == goal)
    assert [e["goal"] for e in data["examples"]] == [mine.goal]
    example = data["examples"][0]
    assert example["outcome"] == "succeeded" and example["answer"] == mine.answer
    assert [(s["kind"], s.get("tool")) for s in example["plan"]] == [
        ("tool", "search"), ("tool", "search"), ("synthesize", None)]


def test_a_reused_plan_that_fails_validation_falls_back_to_planning(workers, db) -> None:
    tenant = new_tenant()
    first = run('Compare "green tea" and "black tea"', tenant)
    assert first.status == "succeeded", first.error
    long_query = " ".join(["oolong"] * 100)  # 699 characters: over search's 500
    second = run(f'Compare "{long_query}" and "black tea"', tenant)
    assert second.status == "succeeded", second.error
    assert second.reused_plan_from is None
    assert plan_calls(db, second.id) == 1
    assert len(second.steps[0].args["query"]) <= 500


def test_a_reused_plan_whose_step_fails_is_replanned(workers, db) -> None:
    tenant = new_tenant()
    first = run("What is 84 / 4?", tenant)
    assert first.answer.endswith(" 21")
    second = run("What is 84 / 0?", tenant)
    assert second.reused_plan_from == first.id
    failed = second.steps[0]
    assert failed.status == "failed" and "division by zero" in failed.error
    assert plan_calls(db, second.id) == 1  # the replan: a planning call after the failure
    assert max(s.plan_version for s in second.steps) == 2
    assert second.status == "succeeded", second.error
    with db.connect() as connection:
        reusable = connection.execute(text(
            "SELECT reusable FROM episode_index WHERE goal_id = :id"),
            {"id": second.id}).scalar()
    assert reusable is False  # a replanned goal's plan is never reused


def test_a_goal_with_session_history_is_always_planned(workers, db) -> None:
    tenant = new_tenant()
    run("What is 17 * 23?", tenant)
    session = f"s-{uuid.uuid4().hex[:8]}"
    opening = run("What is 9 * 8?", tenant, session=session)
    assert opening.reused_plan_from is not None  # no history yet: reuse applies
    follow = run("What is 2 * 3?", tenant, session=session)
    assert follow.reused_plan_from is None and plan_calls(db, follow.id) == 1


def test_reuse_can_be_turned_off(services) -> None:
    from worker.memory import reuse_plan

    with overridden_settings(PLAN_REUSE_ENABLED=False):
        assert reuse_plan(uuid.uuid4(), {"text": "What is 1 * 2?", "tenant_id": None},
                          check=lambda raw: (_ for _ in ()).throw(AssertionError)) is None


def test_a_react_goal_s_actions_are_never_reused_as_a_plan(workers, db) -> None:
    # A ReAct goal's steps carry its own observations in their arguments: a later DAG
    # goal with the same text must be planned, and answer as the ReAct goal did.
    tenant = new_tenant()
    question = ("If Mariana Trench was 20% shallower and the Puerto Rico Trench was 20% "
                "deeper, which one would be shallower?")
    react = wait_for_goal(goals.submit(GoalRequest(goal=question, mode="react"),
                                       tenant_id=tenant).goal_id)
    dag = run(question, tenant)
    assert react.status == dag.status == "succeeded", (react.error, dag.error)
    assert dag.reused_plan_from is None and plan_calls(db, dag.id) == 1
    assert dag.answer == react.answer
