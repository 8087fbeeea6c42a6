"""Session memory through the real gateway, Postgres and worker processes: a follow-up
goal uses its session's earlier answer, the prompts carry the history, the session is
tenant-scoped, and compaction folds older goals into a running summary."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from shared import auth, goals
from shared.domain.models import GoalRequest
from shared.memory.compaction import compact_sessions
from shared.memory.sessions import get_session
from shared.settings import overridden_settings
from tests.conftest import wait_for_goal


def new_tenant(label: str) -> tuple[str, uuid.UUID]:
    """A fresh tenant's API key and id."""
    key = auth.create_key(tenant=f"{label}-{uuid.uuid4().hex[:8]}").key
    return key, auth.verify_key(key).tenant_id


def run(goal: str, *, session: str | None = None, tenant: uuid.UUID | None = None,
        provider: str | None = None):
    request = GoalRequest(goal=goal, session_id=session, provider=provider)
    return wait_for_goal(goals.submit(request, tenant_id=tenant).goal_id)


def received(simulator, purpose: str, goal: str) -> dict:
    """The data section of the newest call with ``purpose`` for ``goal`` the vendor
    simulator received."""
    calls = [c for c in simulator.received
             if c.purpose == purpose and c.data.get("goal") == goal]
    assert calls, f"no {purpose} call for {goal!r} reached the simulator"
    return calls[-1].data


@pytest.fixture()
def client(workers):
    from api_gateway.app import create_app

    with overridden_settings(AUTH_ENABLED=True), TestClient(create_app()) as test_client:
        yield test_client


def test_a_follow_up_goal_uses_the_previous_answer_of_its_session(workers) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    first = run("What is 17 * 23?", session=session)
    assert first.status == "succeeded" and first.answer.endswith("391")
    second = run("Double that number", session=session)
    assert second.status == "succeeded", second.error
    assert second.session_id == session
    assert second.answer.endswith(" 782")
    assert second.steps[0].args == {"expression": "391 * 2"}
    alone = run("Double that number")  # no session: nothing to refer to
    assert "782" not in (alone.answer or "")


def test_the_planner_and_the_synthesizer_see_the_session_history(workers, llm_simulator
                                                                  ) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    _, tenant = new_tenant("history")  # a tenant of its own: no earlier plan to reuse
    first = run("What is 6 * 7?", session=session, provider="openai", tenant=tenant)
    assert first.status == "succeeded", first.error
    plan_data = received(llm_simulator.simulator, "plan", "What is 6 * 7?")
    assert "session" not in plan_data  # the first goal of a session has no history
    second = run("What is that number plus 8?", session=session, provider="openai",
                 tenant=tenant)
    assert second.status == "succeeded", second.error
    assert second.answer.endswith(" 50")
    for purpose in ("plan", "synthesize"):
        data = received(llm_simulator.simulator, purpose, "What is that number plus 8?")
        assert data["session"]["recent"] == [
            {"goal": "What is 6 * 7?", "status": "succeeded", "answer": first.answer}]


def test_a_session_is_scoped_to_its_tenant(client) -> None:
    owner, owner_id = new_tenant("owner")
    stranger, stranger_id = new_tenant("stranger")
    session = f"s-{uuid.uuid4().hex[:8]}"
    first = run("What is 12 * 12?", session=session, tenant=owner_id)
    second = run("Double that number", session=session, tenant=owner_id)
    assert second.answer.endswith(" 288")
    mine = client.get(f"/v1/sessions/{session}", headers={"Authorization": f"Bearer {owner}"})
    assert mine.status_code == 200
    body = mine.json()
    assert [(g["id"], g["goal"], g["answer"]) for g in body["goals"]] == [
        (str(first.id), "What is 12 * 12?", first.answer),
        (str(second.id), "Double that number", second.answer)]
    assert body["total_goals"] == 2 and body["summary"] is None
    theirs = client.get(f"/v1/sessions/{session}",
                        headers={"Authorization": f"Bearer {stranger}"})
    unknown = client.get("/v1/sessions/no-such-session",
                         headers={"Authorization": f"Bearer {stranger}"})
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == {"detail": f"no session with id {session}"}
    # The same id in another tenant is another session: it sees none of the owner's goals.
    echo = run("Double that number", session=session, tenant=stranger_id)
    assert "288" not in (echo.answer or "") and "144" not in str(echo.steps[0].args)
    assert get_session(session, tenant_id=stranger_id).total_goals == 1
    bad = client.get("/v1/sessions/bad%20id", headers={"Authorization": f"Bearer {owner}"})
    assert bad.status_code == 422


def test_the_session_id_is_bounded() -> None:
    with pytest.raises(ValueError):
        GoalRequest(goal="x", session_id="a" * 129)
    with pytest.raises(ValueError):
        GoalRequest(goal="x", session_id="has space")


def test_compaction_folds_older_goals_into_a_running_summary(workers, llm_simulator, db
                                                             ) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    _, tenant = new_tenant("compaction")
    answers = [run(f"What is {n} * 10?", session=session, provider="openai",
                   tenant=tenant).answer for n in (1, 2, 3)]
    assert all(a is not None for a in answers)
    with overridden_settings(SESSION_HISTORY_GOALS=1, SESSION_COMPACT_MIN_GOALS=2):
        counts = compact_sessions()
        assert counts["compacted"] >= 1
        again = compact_sessions()  # nothing new to fold: the session is not picked
    view = get_session(session, tenant_id=tenant)
    assert view.summarized_goals == 2
    assert [g.in_summary for g in view.goals] == [True, True, False]
    assert "What is 1 * 10? -> 10" in view.summary and "What is 2 * 10? -> 20" in view.summary
    assert view.summary.startswith("[simulated]")
    assert session not in str(again)
    with db.connect() as connection:
        calls = connection.execute(text(
            "SELECT count(*) FROM llm_calls WHERE purpose = 'summarize' AND goal_id IS NULL"
        )).scalar()
    assert calls >= 1
    # The next goal's prompts hold the summary and only the goal after it.
    follow_up = run("Double that number", session=session, provider="openai", tenant=tenant)
    assert follow_up.answer.endswith(" 60")
    data = received(llm_simulator.simulator, "plan", "Double that number")
    assert data["session"]["summary"] == view.summary
    assert [g["goal"] for g in data["session"]["recent"]] == ["What is 3 * 10?"]


def test_the_cli_continues_a_session_and_shows_it(workers) -> None:
    from typer.testing import CliRunner

    from taskforce_cli.main import app as cli

    runner = CliRunner()
    session = f"cli-{uuid.uuid4().hex[:8]}"
    first = runner.invoke(cli, ["run", "What is 5 * 5?", "--session", session, "--json"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli, ["run", "Double that number", "--session", session, "--json"])
    assert second.exit_code == 0, second.output
    result = json.loads(second.stdout)
    assert result["session_id"] == session and result["answer"].endswith(" 50")
    shown = runner.invoke(cli, ["session", "show", session, "--json"])
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.stdout)
    assert [(g["goal"], g["answer"]) for g in view["goals"]] == [
        ("What is 5 * 5?", json.loads(first.stdout)["answer"]),
        ("Double that number", result["answer"])]
    missing = runner.invoke(cli, ["session", "show", "no-such-session"])
    assert missing.exit_code != 0 and "no session with id no-such-session" in missing.output
