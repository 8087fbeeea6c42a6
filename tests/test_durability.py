"""Idempotent submission, cancellation and the reconciler, against real services."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
import uvicorn
from sqlalchemy import text

from scheduler import reconciler
from shared import goals, names
from shared.celery_app import step_task_id
from shared.domain.models import GoalRequest, Plan
from shared.persistence import goals as goal_store
from shared.persistence.db import get_engine
from shared.settings import get_settings, overridden_settings
from taskforce_cli.embedded import free_port
from tests.conftest import wait_for_goal
from tests.support.waiting import log_count, wait_for, wait_until
from worker.tasks import check_redis_eviction_policy


def echo(step_id: int, delay_s: float = 0.0, **extra) -> dict:
    return {"id": step_id, "kind": "tool", "tool": "echo",
            "args": {"value": step_id, "delay_s": delay_s}, **extra}


def synth(step_id: int, *refs: int) -> dict:
    return {"id": step_id, "kind": "synthesize", "args": {"inputs": [f"${r}" for r in refs]}}


@pytest.fixture()
def gateway_url(workers):
    """A real uvicorn server running the gateway on a loopback port (authentication off:
    tests/test_auth.py covers keys)."""
    from api_gateway.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    with overridden_settings(AUTH_ENABLED=False):
        thread.start()
        wait_until(lambda: server.started or not thread.is_alive(), timeout=10,
                   interval=0.02, message="the gateway's uvicorn server started")
        assert server.started, "the gateway's uvicorn server exited during start"
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
        thread.join(timeout=10)


def test_twenty_concurrent_posts_with_one_key_make_one_goal(gateway_url, db) -> None:
    key = f"key-{uuid.uuid4()}"
    body = {"goal": "What is 6 * 7?", "metadata": {"n": 1}}

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{gateway_url}/v1/goals", json=body,
                          headers={"Idempotency-Key": key}, timeout=30)

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(post, range(20)))
    assert {r.status_code for r in responses} == {202}
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 19
    goal_id = uuid.UUID(ids.pop())
    assert wait_for_goal(goal_id).status == "succeeded"
    with db.connect() as connection:
        count = connection.execute(
            text("SELECT count(*) FROM goals WHERE idempotency_key = :k"), {"k": key}).scalar()
        plans = connection.execute(
            text("SELECT count(*) FROM llm_calls WHERE goal_id = :id AND purpose = 'plan'"),
            {"id": goal_id}).scalar()
    assert count == 1
    assert plans == 1


def test_the_same_key_with_another_body_is_refused(gateway_url) -> None:
    key = f"key-{uuid.uuid4()}"
    first = httpx.post(f"{gateway_url}/v1/goals", json={"goal": "a"},
                       headers={"Idempotency-Key": key})
    second = httpx.post(f"{gateway_url}/v1/goals", json={"goal": "b"},
                        headers={"Idempotency-Key": key})
    assert first.status_code == 202
    assert second.status_code == 422
    assert "different request body" in second.json()["detail"]


def test_cancel_stops_dispatch_and_ignores_late_results(gateway_url, db, workers) -> None:
    plan = {"steps": [echo(1, delay_s=1.5), echo(2, **{"depends_on": [1]}), synth(3, 2)]}
    goal_id = httpx.post(f"{gateway_url}/v1/goals",
                         json={"goal": "slow", "plan": plan}).json()["id"]
    wait_for(lambda: httpx.get(f"{gateway_url}/v1/goals/{goal_id}").json()["steps"],
             lambda steps: steps and steps[0]["status"] == "running", interval=0.02,
             message=f"step 1 of {goal_id} running")
    cancelled = httpx.post(f"{gateway_url}/v1/goals/{goal_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    # Step 1 finishes meanwhile: wait until its task has ended in a worker (Celery logs
    # that after the commit and whatever dispatch followed it).
    step_1_done = f"Task {names.RUN_STEP}[{step_task_id(goal_id, 1)}] succeeded"
    wait_until(lambda: log_count([w.log_path for w in workers], step_1_done),
               message=f"a worker logged {step_1_done!r}")
    view = httpx.get(f"{gateway_url}/v1/goals/{goal_id}").json()
    statuses = {s["id"]: s["status"] for s in view["steps"]}
    assert view["status"] == "cancelled" and view["answer"] is None
    # Step 1 either finished or, as echo checks for cancellation, stopped early.
    assert statuses == {1: statuses[1], 2: "skipped", 3: "skipped"}
    assert statuses[1] == "succeeded" or view["steps"][0]["error"].startswith("cancelled:")
    with db.connect() as connection:
        runs = connection.execute(text("SELECT step_id FROM step_runs WHERE goal_id = :id"),
                                  {"id": uuid.UUID(goal_id)}).scalars().all()
    assert runs == [1]
    again = httpx.post(f"{gateway_url}/v1/goals/{goal_id}/cancel")
    assert again.status_code == 409
    missing = httpx.post(f"{gateway_url}/v1/goals/{uuid.uuid4()}/cancel")
    assert missing.status_code == 404


@pytest.fixture()
def quick_reconciler(monkeypatch):
    """Reconciler settings with a 0.2 s staleness, for this process only."""
    monkeypatch.setenv("RECONCILE_STALE_S", "0.2")
    monkeypatch.setenv("PLANNING_STALE_S", "0.2")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_reconciler_publishes_what_a_crash_left_unpublished(workers, quick_reconciler) -> None:
    # A crash between commit and publish: the plan is stored, its roots are queued,
    # and no message was ever sent. Likewise a goal stored without its plan_goal.
    request = GoalRequest(goal="stranded", plan={"steps": [echo(1), echo(2), synth(3, 1, 2)]})
    with get_engine().begin() as connection:
        stranded, _ = goal_store.create_goal(
            connection, text_=request.goal, provider="sim", model="sim-planner-1",
            metadata={})
        connection.execute(text("UPDATE goals SET status = 'planning' WHERE id = :id"),
                           {"id": stranded})
        goal_store.start_plan(connection, goal_id=stranded,
                              plan=Plan.model_validate(request.plan))
        unplanned, _ = goal_store.create_goal(
            connection, text_="What is 2 + 2?", provider="sim", model="sim-planner-1",
            metadata={})
    # Wait until both are stale by the reconciler's own measure (Postgres's clock and
    # RECONCILE_STALE_S), then reconcile once.
    stale = get_settings().reconcile_stale_s

    def both_stale() -> bool:
        with get_engine().connect() as connection:
            return connection.execute(text(
                "SELECT (SELECT bool_and(queued_at < now() - make_interval(secs => :s)) "
                "        FROM steps WHERE goal_id = :stranded AND status = 'queued') "
                "   AND (SELECT updated_at < now() - make_interval(secs => :s) "
                "        FROM goals WHERE id = :unplanned)"),
                {"s": stale, "stranded": stranded, "unplanned": unplanned}).scalar()

    wait_until(both_stale, timeout=10, message="the stranded step and goal older than "
               f"RECONCILE_STALE_S ({stale} s)")
    repairs = reconciler.run_once()
    assert (stranded, 1, "tool") in repairs.steps_to_publish
    assert unplanned in repairs.goals_to_plan
    assert wait_for_goal(stranded).status == "succeeded"
    assert wait_for_goal(unplanned).status == "succeeded"


def test_the_reconciler_finishes_goals_and_fails_lost_steps(workers, quick_reconciler, db) -> None:
    done = goals.submit_goal(GoalRequest(goal="done", plan={"steps": [echo(1), synth(2, 1)]}))
    assert wait_for_goal(done).status == "succeeded"
    lost = goals.submit_goal(GoalRequest(goal="lost", plan={"steps": [echo(1, 0.5),
                                                                         synth(2, 1)]}))
    assert wait_for_goal(lost).status == "succeeded"
    with db.begin() as connection:
        # A completion that was committed but whose goal end was not recorded...
        connection.execute(text("UPDATE goals SET status = 'running', answer = NULL, "
                                "finished_at = NULL WHERE id = :id"), {"id": done})
        connection.execute(text("DELETE FROM episodes WHERE goal_id = :id"), {"id": done})
        # ...and a step whose worker died at its last attempt.
        connection.execute(text("UPDATE goals SET status = 'running', finished_at = NULL "
                                "WHERE id = :id"), {"id": lost})
        connection.execute(text(
            "UPDATE steps SET status = 'running', attempt = :cap, "
            "lease_expires_at = now() - interval '1 second' WHERE goal_id = :id AND step_id = 1"),
            {"id": lost, "cap": get_settings().step_max_attempts})
        connection.execute(text("UPDATE steps SET status = 'pending' WHERE goal_id = :id "
                                "AND step_id = 2"), {"id": lost})
    repairs = reconciler.run_once()
    assert done in repairs.goals_finished
    assert (lost, 1) in repairs.steps_failed
    finished = goals.get_goal(done)
    assert finished.status == "succeeded" and finished.answer.startswith("[simulated]")
    failed = goals.get_goal(lost)
    assert failed.status == "failed"
    assert "worker_lost" in failed.error
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM episodes WHERE goal_id = :id"),
                                  {"id": done}).scalar() == 1


def test_only_one_reconciler_runs_at_a_time(services, db) -> None:
    from shared.persistence.reconcile import reconcile

    with db.begin() as holder:
        first = reconcile(holder, stale_s=60, planning_stale_s=60, max_attempts=3)
        with db.begin() as other:
            second = reconcile(other, stale_s=60, planning_stale_s=60, max_attempts=3)
    assert first.locked and not second.locked


def test_a_redis_that_may_evict_messages_is_refused(services) -> None:
    url = services["REDIS_URL"]
    assert check_redis_eviction_policy(url) is None
    client = redis.Redis.from_url(url)
    client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        assert "allkeys-lru" in check_redis_eviction_policy(url)
    finally:
        client.config_set("maxmemory-policy", "noeviction")
        client.close()
