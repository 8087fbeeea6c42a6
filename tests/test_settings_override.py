"""Per-process settings overrides: what wins over the environment, what children receive,
and the Celery app and engine following a new broker and database."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.celery_app import app
from shared.persistence import db
from shared.settings import (
    Settings,
    child_environment,
    get_settings,
    overridden_settings,
    override_settings,
    reset_settings,
)


def test_an_override_wins_over_the_environment_and_reaches_children(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STEP_LEASE_S", "7")
    get_settings.cache_clear()
    with overridden_settings(STEP_LEASE_S="11", tool_modules=("a.tools", "b.tools")):
        assert get_settings().step_lease_s == 11.0
        env = child_environment({"EXTRA": "1"})
        assert env["STEP_LEASE_S"] == "11"
        assert env["TOOL_MODULES"] == "a.tools,b.tools"
        assert env["EXTRA"] == "1"
        get_settings.cache_clear()  # re-reading the environment keeps the override
        assert get_settings().step_lease_s == 11.0
    assert get_settings().step_lease_s == 7.0
    assert child_environment()["STEP_LEASE_S"] == "7"


def test_a_bad_override_changes_nothing() -> None:
    before = get_settings()
    with pytest.raises(ValidationError):
        override_settings(step_lease_s="not-a-number")
    with pytest.raises(TypeError, match="not a Taskforce setting"):
        override_settings(NO_SUCH_SETTING="1")
    assert get_settings() == before


def test_the_celery_app_and_engine_follow_an_override(services) -> None:  # noqa: ANN001
    original_broker = app.conf.broker_url
    original_engine = db.get_engine()
    elsewhere = "redis://127.0.0.1:1/5"
    database = original_engine.url.set(database="elsewhere").render_as_string(
        hide_password=False)
    with overridden_settings(redis_url=elsewhere, database_url=database):
        assert app.conf.broker_url == elsewhere
        with app.connection_for_write() as connection:
            assert connection.as_uri().endswith("127.0.0.1:1/5")
        assert db.get_engine().url.database == "elsewhere"
        producers_elsewhere = app.amqp.producer_pool  # built lazily, nothing connects
    assert app.conf.broker_url == original_broker
    assert db.get_engine().url.database == original_engine.url.database
    # Producers made for the other broker are gone; publishing uses the original again.
    assert app.amqp.producer_pool is not producers_elsewhere
    with app.producer_or_acquire() as producer:
        assert producer.connection.as_uri() == app.connection_for_write().as_uri()
        assert ":1/5" not in producer.connection.as_uri()


def test_reset_settings_drops_only_the_names_given() -> None:
    with overridden_settings(step_lease_s=5, reconcile_interval_s=2):
        reset_settings("STEP_LEASE_S")
        assert get_settings().reconcile_interval_s == 2.0
        assert get_settings().step_lease_s == Settings().step_lease_s  # the environment's
        assert child_environment()["RECONCILE_INTERVAL_S"] == "2"
