"""Beat's maintenance jobs, sent by task name to the real workers, as beat sends them."""

from __future__ import annotations

from sqlalchemy import text

from scheduler.beat import app as beat_app
from shared import names
from shared.celery_app import send
from shared.domain.models import GoalRequest
from tests.support.waiting import wait_until


def test_beat_schedules_every_maintenance_job() -> None:
    assert {entry["task"] for entry in beat_app.conf.beat_schedule.values()} == {
        names.RECONCILE, names.ROLLUP_COSTS, names.CLEAN_MEMORY, names.COMPACT_SESSIONS}


def test_costs_are_rolled_up_per_day_provider_and_model(run_goal, db) -> None:  # noqa: ANN001
    assert run_goal(GoalRequest(goal="What is 3 * 4?")).status == "succeeded"
    with db.begin() as connection:
        connection.execute(text("DELETE FROM cost_rollups"))
        expected = connection.execute(text(
            "SELECT count(*), sum(input_tokens), sum(output_tokens) FROM llm_calls "
            "WHERE provider = 'sim' AND created_at::date = (now() AT TIME ZONE 'UTC')::date"
        )).one()
    send(names.ROLLUP_COSTS)

    def rolled_up() -> tuple | None:
        with db.connect() as connection:
            return connection.execute(text(  # every sim model's row (other tests use others)
                "SELECT sum(calls), sum(input_tokens), sum(output_tokens) FROM cost_rollups "
                "WHERE provider = 'sim' AND day = (now() AT TIME ZONE 'UTC')::date "
                "HAVING count(*) > 0"
            )).first()

    calls, input_tokens, output_tokens = wait_until(
        rolled_up, interval=0.1, message="today's sim row in cost_rollups")
    assert calls >= expected[0] > 0
    assert input_tokens >= expected[1] and output_tokens >= expected[2]


def test_old_finished_goals_are_cleaned_with_everything_they_hold(run_goal, db) -> None:  # noqa: ANN001
    old = run_goal(GoalRequest(goal="What is 5 * 5?"))
    recent = run_goal(GoalRequest(goal="What is 6 * 6?"))
    with db.begin() as connection:
        connection.execute(text("UPDATE goals SET finished_at = now() - interval '400 days' "
                                "WHERE id = :id"), {"id": old.id})
    send(names.CLEAN_MEMORY)

    def gone() -> bool:
        with db.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM goals WHERE id = :id"),
                                      {"id": old.id}).scalar() == 0

    wait_until(gone, interval=0.1, message=f"goal {old.id} deleted by {names.CLEAN_MEMORY}")
    with db.connect() as connection:
        for table in ("steps", "step_runs", "llm_calls", "episodes", "plans"):
            left = connection.execute(text(f"SELECT count(*) FROM {table} WHERE goal_id = :id"),
                                      {"id": old.id}).scalar()
            assert left == 0, table
        assert connection.execute(text("SELECT count(*) FROM goals WHERE id = :id"),
                                  {"id": recent.id}).scalar() == 1
