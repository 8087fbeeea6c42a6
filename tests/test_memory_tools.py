"""``remember`` and ``recall`` as DAG steps on real workers: the goal's tenant, parallel
recall, de-duplication of a step run twice, and the sim planner's memory goals."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from shared import goals
from shared.domain.models import GoalRequest
from shared.memory import store as memory
from shared.persistence.db import get_engine
from shared.persistence.keys import DEFAULT_TENANT_ID
from tests.conftest import wait_for_goal
from tests.support.memory import new_tenant


def run_plan(steps: list[dict], *, tenant_id: uuid.UUID, goal: str = "memory plan"):
    request = GoalRequest(goal=goal, plan={"steps": steps}, max_replans=0)
    return wait_for_goal(goals.submit(request, tenant_id=tenant_id).goal_id)


def step(goal, number: int):
    return next(s for s in goal.steps if s.id == number)


def test_a_goal_remembers_for_its_own_tenant_only(workers, db) -> None:
    owner, other = new_tenant("tool-owner"), new_tenant("tool-other")
    fact = f"Project Kestrel ships on Friday ({uuid.uuid4().hex[:6]})."
    done = run_plan([
        {"id": 1, "kind": "tool", "tool": "remember", "args": {"content": fact,
                                                                "namespace": "projects"}},
        {"id": 2, "kind": "synthesize", "args": {"inputs": ["$1"]}, "depends_on": [1]},
    ], tenant_id=owner)
    assert done.status == "succeeded", done.error
    assert step(done, 1).result["created"] is True
    with db.connect() as connection:
        row = connection.execute(text(
            "SELECT tenant_id, source FROM memory_items WHERE content = :c"), {"c": fact}).one()
    assert row.tenant_id == owner and row.source == f"goal:{done.id}"
    mine = memory.recall(tenant_id=owner, query="Kestrel ships", namespace="projects")
    assert [h.content for h in mine.hits] == [fact]
    theirs = memory.recall(tenant_id=other, query="Kestrel ships", namespace="projects")
    assert theirs.hits == []


def test_recall_runs_in_parallel_with_other_lookups(workers) -> None:
    tenant_id = new_tenant("tool-parallel")
    memory.remember(memory.MemoryWrite(content="The Mariana Trench survey is led by Dr. Ito."),
                    tenant_id=tenant_id, source="api")
    done = run_plan([
        {"id": 1, "kind": "tool", "tool": "recall", "args": {"query": "Mariana Trench survey"}},
        {"id": 2, "kind": "tool", "tool": "search", "args": {"query": "Mariana Trench"}},
        {"id": 3, "kind": "synthesize", "args": {"inputs": ["$1", "$2"]},
         "depends_on": [1, 2]},
    ], tenant_id=tenant_id)
    assert done.status == "succeeded", done.error
    recalled, searched = step(done, 1), step(done, 2)
    assert recalled.result["hits"][0]["snippet"].startswith("The Mariana Trench survey")
    # Hybrid where the database has pgvector (the embedded one), full-text elsewhere.
    expected = "hybrid" if memory.vector_dimension(get_engine()) else "full_text"
    assert recalled.result["mode"] == expected
    # Neither waited for the other: the recall started before the search finished.
    assert recalled.started_at < searched.finished_at
    assert searched.started_at < recalled.finished_at


def test_a_remember_step_run_twice_stores_the_fact_once(workers, db) -> None:
    tenant_id = new_tenant("tool-twice")
    steps = [
        {"id": 1, "kind": "tool", "tool": "remember", "args": {"content": "Tea at four."}},
        {"id": 2, "kind": "tool", "tool": "remember", "args": {"content": "Tea at four."}},
        {"id": 3, "kind": "synthesize", "args": {"inputs": ["$1", "$2"]},
         "depends_on": [1, 2]},
    ]
    done = run_plan(steps, tenant_id=tenant_id)
    assert done.status == "succeeded", done.error
    assert sorted([step(done, 1).result["created"], step(done, 2).result["created"]]) == [
        False, True]
    assert step(done, 1).result["id"] == step(done, 2).result["id"]
    with db.connect() as connection:
        assert connection.execute(text(
            "SELECT count(*) FROM memory_items WHERE tenant_id = :t"), {"t": tenant_id}
        ).scalar() == 1


def test_a_bad_memory_argument_fails_only_its_goal(workers) -> None:
    done = run_plan([
        {"id": 1, "kind": "tool", "tool": "remember",
         "args": {"content": "x" * 5_000}},
        {"id": 2, "kind": "synthesize", "args": {"inputs": ["$1"]}, "depends_on": [1]},
    ], tenant_id=new_tenant("tool-bad"))
    assert done.status == "failed"
    assert "remember refused" in done.error and "MEMORY_MAX_CONTENT_CHARS" in done.error


def test_the_sim_planner_remembers_and_recalls(run_goal) -> None:
    marker = uuid.uuid4().hex[:8]
    stored = run_goal(GoalRequest(goal=f"Remember that the Q3 offsite code is {marker}."))
    assert stored.status == "succeeded", stored.error
    assert [s.tool for s in stored.steps if s.kind == "tool"] == ["remember"]
    assert marker in stored.answer and "Remembered" in stored.answer
    recalled = run_goal(GoalRequest(goal="What do you remember about the Q3 offsite code?"))
    assert recalled.status == "succeeded", recalled.error
    assert sorted(s.tool for s in recalled.steps if s.kind == "tool") == ["recall", "search"]
    assert marker in recalled.answer
    # Goals without a tenant act for the default tenant.
    found = memory.recall(tenant_id=DEFAULT_TENANT_ID, query=f"offsite code {marker}")
    assert any(marker in h.content for h in found.hits)
