"""Input limits and poison pills, through the real gateway, workers and reconciler.

Every request here was once accepted (202) or answered as an outage (503) or a crash
(500); each now gets a 4xx with a reason, or fails its goal once with a reason.
"""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from shared.domain.models import GoalRequest, GoalStatus
from shared.settings import overridden_settings

SYNTH = {"id": 1, "kind": "synthesize", "args": {"inputs": [], "instruction": "answer"}}


@pytest.fixture()
def client(workers):
    """The gateway with authentication off: these tests are about what a request holds."""
    from api_gateway.app import create_app

    with overridden_settings(AUTH_ENABLED=False), \
            TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def _nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def _post_raw(client: TestClient, raw: bytes):
    return client.post("/v1/goals", content=raw, headers={"content-type": "application/json"})


def _assert_422(response, fragment: str) -> None:
    assert response.status_code == 422, (response.status_code, response.text[:500])
    assert fragment in response.text, response.text[:500]


def test_metadata_nested_260_deep_is_refused(client) -> None:
    response = client.post("/v1/goals", json={"goal": "What is 2 + 2?",
                                              "metadata": _nested(260)})
    _assert_422(response, "nested deeper than 32 levels")


def test_ten_megabytes_of_metadata_is_a_413(client) -> None:
    response = client.post("/v1/goals", json={"goal": "What is 2 + 2?",
                                              "metadata": {"blob": "x" * 10_000_000}})
    assert response.status_code == 413, response.text[:300]
    assert "larger than 1048576 bytes" in response.json()["detail"]


def test_metadata_over_its_own_limit_is_refused(client) -> None:
    response = client.post("/v1/goals", json={"goal": "What is 2 + 2?",
                                              "metadata": {"blob": "x" * 20_000}})
    _assert_422(response, "more than 16384")


def test_a_streamed_body_over_the_limit_is_a_413(client) -> None:
    def chunks():
        yield b'{"goal": "What is 2 + 2?", "metadata": {"blob": "'
        for _ in range(2_000):
            yield b"x" * 1_000
        yield b'"}}'

    response = client.post("/v1/goals", content=chunks(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text[:300]


def test_a_100000_step_plan_is_refused_before_its_steps_are_parsed(client) -> None:
    steps = [{"id": i, "kind": "tool"} for i in range(1, 100_001)]
    response = client.post("/v1/goals", json={"goal": "x", "plan": {"steps": steps}})
    assert response.status_code == 413
    steps = [{"id": i, "kind": "tool", "tool": "nonsense"} for i in range(1, 5_001)]
    response = client.post("/v1/goals", json={"goal": "x", "plan": {"steps": steps}})
    _assert_422(response, "5000 steps exceed the cap of 32")


def test_a_step_id_beyond_the_column_is_refused(client) -> None:
    plan = {"steps": [SYNTH | {"id": 3_000_000_000}]}
    response = client.post("/v1/goals", json={"goal": "What is 2 + 2?", "plan": plan})
    _assert_422(response, "less than or equal to 10000")
    plan = {"steps": [SYNTH | {"depends_on": [3_000_000_000]}]}
    response = client.post("/v1/goals", json={"goal": "What is 2 + 2?", "plan": plan})
    _assert_422(response, "less than or equal to 10000")


def test_deeply_nested_step_args_are_refused(client) -> None:
    plan = {"steps": [SYNTH | {"args": {"inputs": [], "instruction": "x",
                                        "extra": _nested(30)}}]}
    response = client.post("/v1/goals", json={"goal": "What is 2 + 2?", "plan": plan})
    _assert_422(response, "nested deeper than")


@pytest.mark.parametrize(("raw", "fragment"), [
    (b'{"goal": "What is 2 + 2?\\u0000"}', "NUL character"),
    (b'{"goal": "What is 2 + 2? \\ud800"}', "lone surrogate"),
    (b'{"goal": "What is 2 + 2?", "metadata": {"k\\u0000": 1}}', "NUL character"),
    (b'{"goal": "What is 2 + 2?", "max_cost_usd": NaN}', "NaN is not a valid JSON number"),
    (b'{"goal": "What is 2 + 2?", "max_cost_usd": Infinity}', "Infinity is not a valid"),
    (b'{"goal": "What is 2 + 2?", "max_cost_usd": 1e400}', "out of range"),
    (b'{"goal": "What is 2 + 2?", "max_cost_usd": 1e12}', "less than or equal to 1000"),
    (b'{"goal": "What is 2 + 2?", "max_tokens": 99999999999999999999}',
     "less than or equal to 10000000"),
    (b'{"goal": "What is 2 + 2?", "max_cost_usd": -1}', "greater than"),
    (b'{"goal": "\xff"}', "not valid UTF-8"),
    (b'{"goal": "' + b"x" * 20_001 + b'"}', "at most 20000 characters"),
])
def test_bad_input_is_a_422_with_a_reason_never_a_503(client, raw, fragment) -> None:
    response = _post_raw(client, raw)
    _assert_422(response, fragment)
    assert "retry-after" not in response.headers


def test_the_validation_handler_never_echoes_the_input(client) -> None:
    secret = f"sk-live-{uuid.uuid4().hex}"
    for body in ({"goal": "What is 2 + 2?", "max_tokens": secret},
                 {"goal": "What is 2 + 2?", "metadata": secret},
                 {"goal": "What is 2 + 2?", "plan": {"steps": [{"id": secret}]}},
                 {"goal": secret * 2_000}):
        response = client.post("/v1/goals", json=body)
        assert response.status_code == 422, response.text[:300]
        assert secret not in response.text
        detail = response.json()["detail"]
        if body.get("plan"):  # refused by plan validation: a reason, as a string
            assert detail.startswith("plan_invalid: schema: steps.0.id"), detail
        else:
            assert all(set(e) == {"loc", "msg", "type"} for e in detail), detail


def test_a_database_data_error_is_a_422_and_an_outage_stays_a_503(client, db) -> None:
    from api_gateway.app import create_app

    app = create_app()

    def store_nul() -> dict:
        with db.connect() as connection:
            connection.execute(text("SELECT CAST(:v AS text)"), {"v": "a\x00b"})
        return {}

    app.add_api_route("/probe", store_nul)
    with TestClient(app, raise_server_exceptions=False) as probe:
        response = probe.get("/probe")
    assert response.status_code == 422, response.text
    assert response.json() == {"detail": "the request holds data the database cannot store"}


def test_a_plan_with_a_huge_step_id_fails_its_goal_once(run_goal) -> None:
    # The worker validates a ready-made plan with the same checks as an LLM's plan.
    plan = {"steps": [SYNTH | {"id": 3_000_000_000}]}
    goal = run_goal(GoalRequest(goal="What is 2 + 2?", plan=plan), check=False, timeout=30)
    assert goal.status is GoalStatus.FAILED
    assert goal.error.startswith("plan_invalid: schema: steps.0.id"), goal.error
    assert goal.steps == []


def test_a_goal_with_deep_metadata_already_stored_still_reads(client, db) -> None:
    # A row written before the limits existed: reading it must never be a 500.
    accepted = client.post("/v1/goals", json={"goal": "What is 17 * 23?"}).json()
    with db.begin() as connection:
        connection.execute(text("UPDATE goals SET metadata = CAST(:m AS jsonb) WHERE id = :id"),
                           {"m": json.dumps(_nested(300)), "id": accepted["id"]})
    response = client.get(accepted["url"])
    assert response.status_code == 200, response.text[:300]
    assert response.json()["metadata"] == {
        "unreadable": "metadata is nested deeper than 100 levels"}


def test_a_result_the_database_refuses_fails_its_step_once(run_goal, db) -> None:
    # A lone surrogate passes json.dumps but not Postgres' jsonb: a data error in the
    # commit, which used to be left to the lease and the reconciler to run it again.
    plan = {"steps": [{"id": 1, "kind": "tool", "tool": "misbehave",
                       "args": {"mode": "surrogate"}},
                      SYNTH | {"id": 2, "args": {"inputs": ["$1"], "instruction": "x"}}]}
    view = run_goal(GoalRequest(goal="misbehave surrogate", max_replans=1, plan=plan),
                    timeout=20)
    assert view.status is GoalStatus.FAILED
    assert view.error.startswith(
        "step_failed: step 1: result of misbehave could not be stored "
        "(InvalidTextRepresentation)"), view.error
    with db.connect() as connection:
        outcomes = connection.execute(
            text("SELECT outcome FROM step_runs WHERE goal_id = :id ORDER BY id"),
            {"id": view.id}).scalars().all()
    assert outcomes == ["failed"]  # one claim, no re-run, no replan


def _insert_running_goal(connection, *, step_status: str, result: dict | None,
                         attempt: int, lease_expired: bool) -> uuid.UUID:
    goal_id = uuid.uuid4()
    connection.execute(text(
        "INSERT INTO goals (id, text, status, provider, model, plan_version) "
        "VALUES (:id, 'reconciler poison test', 'running', 'sim', 'sim-planner-1', 1)"),
        {"id": goal_id})
    connection.execute(text(
        "INSERT INTO steps (goal_id, step_id, plan_version, kind, args, depends_on, status, "
        "attempt, lease_owner, lease_expires_at, result) VALUES (:id, 1, 1, 'synthesize', "
        "'{}', '{}', :status, :attempt, 'gone', "
        "CASE WHEN :expired THEN now() - interval '1 hour' END, CAST(:result AS jsonb))"),
        {"id": goal_id, "status": step_status, "attempt": attempt, "expired": lease_expired,
         "result": json.dumps(result) if result is not None else None})
    return goal_id


def test_a_poison_goal_does_not_stop_the_reconciler_repairing_the_others(services, db):
    from scheduler.reconciler import run_once
    from shared.settings import get_settings

    cap = get_settings().step_max_attempts
    with db.begin() as connection:
        poison = _insert_running_goal(connection, step_status="running", result=None,
                                      attempt=cap, lease_expired=True)
        lost = _insert_running_goal(connection, step_status="running", result=None,
                                    attempt=cap, lease_expired=True)
        done = _insert_running_goal(connection, step_status="succeeded",
                                    result={"answer": "42"}, attempt=1, lease_expired=False)
        # The poison: its episode cannot be written (a data error on every attempt).
        connection.execute(text(f"""
            CREATE FUNCTION refuse_poison_episode() RETURNS trigger AS $$
            BEGIN
              IF NEW.goal_id = '{poison}' THEN
                RAISE EXCEPTION 'poison episode' USING ERRCODE = '22023';
              END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql"""))
        connection.execute(text(
            "CREATE TRIGGER refuse_poison_episode BEFORE INSERT ON episodes "
            "FOR EACH ROW EXECUTE FUNCTION refuse_poison_episode()"))
    try:
        repairs = run_once()
    finally:
        with db.begin() as connection:
            connection.execute(text("DROP TRIGGER refuse_poison_episode ON episodes"))
            connection.execute(text("DROP FUNCTION refuse_poison_episode()"))
    assert repairs.locked
    with db.connect() as connection:
        rows = {r.id: r for r in connection.execute(text(
            "SELECT g.id, g.status, g.error, g.answer, e.goal_id IS NOT NULL AS episode "
            "FROM goals g LEFT JOIN episodes e ON e.goal_id = g.id WHERE g.id IN "
            "(:a, :b, :c)"), {"a": poison, "b": lost, "c": done})}
    assert (rows[lost].status, rows[lost].episode) == ("failed", True)
    assert rows[lost].error.startswith("step_failed: step 1: worker_lost"), rows[lost].error
    assert (rows[done].status, rows[done].answer, rows[done].episode) == ("succeeded", "42",
                                                                          True)
    assert (rows[poison].status, rows[poison].episode) == ("failed", False)
    assert rows[poison].error.startswith(
        "reconcile_failed: ending the goal raised DataError (step_failed: step 1: "
        "worker_lost"), rows[poison].error
