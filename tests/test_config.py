"""Settings read from the environment: normalisation and the forms users write."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import Settings


def test_database_urls_select_psycopg_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db:5432/tf")
    assert Settings().database_url == "postgresql+psycopg://u@db:5432/tf"
    monkeypatch.setenv("DATABASE_URL", "")
    assert Settings().database_url is None


def test_tool_modules_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOL_MODULES", " my.tools, other.tools ,")
    assert Settings().tool_modules == ("my.tools", "other.tools")


@pytest.mark.parametrize("blank", ["", "none", "NULL"])
def test_a_blank_budget_means_no_limit(monkeypatch: pytest.MonkeyPatch, blank: str) -> None:
    monkeypatch.setenv("GOAL_MAX_TOKENS", blank)
    monkeypatch.setenv("GOAL_MAX_COST_USD", blank)
    settings = Settings()
    assert settings.goal_max_tokens is None and settings.goal_max_cost_usd is None


def test_the_visibility_timeout_outlasts_the_longest_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOL_STEP_TIME_LIMIT_S", "100")
    monkeypatch.setenv("LLM_STEP_TIME_LIMIT_S", "250")
    monkeypatch.setenv("STEP_LEASE_S", "20")
    assert Settings().visibility_timeout_s == 250 + 20 + 60
    monkeypatch.setenv("BROKER_VISIBILITY_TIMEOUT_S", "5")
    assert Settings().visibility_timeout_s == 5


def test_an_unknown_pool_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_POOL", "fork-bomb")
    with pytest.raises(ValidationError, match="worker_pool must be"):
        Settings()
