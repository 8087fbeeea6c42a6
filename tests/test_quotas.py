"""Quotas and ceilings per tenant, through the real gateway, Redis, Postgres and workers."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from shared import auth, quotas
from shared.settings import get_settings, overridden_settings
from taskforce_cli.main import app as cli
from tests.conftest import wait_for_goal

SCOPES = (auth.GOALS_SUBMIT, auth.GOALS_READ, auth.GOALS_CANCEL, auth.PLANS_SUBMIT)
QUESTION = {"goal": "What is 6 * 7?"}


@pytest.fixture()
def gateways(workers):
    """Two gateway applications (as two gateway processes would be), authentication on."""
    from api_gateway.app import create_app

    with overridden_settings(AUTH_ENABLED=True), TestClient(create_app()) as first, \
            TestClient(create_app()) as second:
        yield first, second


def tenant_with_key(label: str, **limits) -> tuple[str, dict[str, str]]:
    """A new tenant with the given limits and a key for it: (name, auth headers)."""
    name = f"{label}-{uuid.uuid4().hex[:8]}"
    key = auth.create_key(tenant=name, scopes=SCOPES).key
    if limits:
        quotas.set_tenant_limits(name, limits)
    return name, {"Authorization": f"Bearer {key}"}


def slow_plan() -> dict:
    delay = get_settings().tool_echo_max_delay_s
    return {"goal": "stay in flight", "plan": {"steps": [
        {"id": 1, "kind": "tool", "tool": "echo", "args": {"value": 1, "delay_s": delay}},
        {"id": 2, "kind": "synthesize", "args": {"inputs": ["$1"]}, "depends_on": [1]}]}}


def test_goals_per_minute_is_shared_by_two_gateways_atomically(gateways) -> None:
    _, headers = tenant_with_key("rate", goals_per_minute=4)  # one goal per 15 s after a burst
    clients = gateways * 6

    def post(client: TestClient):
        return client.post("/v1/goals", json=QUESTION, headers=headers)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(post, clients))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] * 4 + [429] * 8, [r.text for r in responses]
    for refused in (r for r in responses if r.status_code == 429):
        assert 1 <= int(refused.headers["retry-after"]) <= 15
        assert "4 goals per minute" in refused.json()["detail"]
    # Spent for both applications alike: the quota lives in Redis, not in either process.
    assert [post(client).status_code for client in gateways] == [429, 429]


def test_goals_per_minute_answers_429_with_retry_after_then_recovers(gateways) -> None:
    client = gateways[0]
    _, headers = tenant_with_key("recover", goals_per_minute=6)  # then one per 10 s
    for _ in range(6):
        assert client.post("/v1/goals", json=QUESTION, headers=headers).status_code == 202
    refused = client.post("/v1/goals", json=QUESTION, headers=headers)
    assert refused.status_code == 429
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 10
    refused_at = time.monotonic()
    deadline = refused_at + retry_after + 5
    while True:  # refused polls consume nothing
        response = client.post("/v1/goals", json=QUESTION, headers=headers)
        if response.status_code == 202:
            break
        assert response.status_code == 429, response.text
        assert time.monotonic() < deadline, "the quota did not recover after Retry-After"
        time.sleep(0.25)
    assert time.monotonic() - refused_at >= retry_after - 1.5  # not before it was due


def test_goals_in_flight_are_capped_atomically(gateways) -> None:
    _, headers = tenant_with_key("inflight", max_goals_in_flight=3)
    clients = gateways * 4

    def post(client: TestClient):
        return client.post("/v1/goals", json=slow_plan(), headers=headers)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(post, clients))
    accepted = [r.json()["id"] for r in responses if r.status_code == 202]
    refused = [r for r in responses if r.status_code != 202]
    assert len(accepted) == 3 and len(refused) == 5, [r.text for r in responses]
    for response in refused:
        assert response.status_code == 429
        assert "3 goals in flight, at most 3" in response.json()["detail"]
        assert "retry-after" not in response.headers
    client = gateways[0]
    assert client.post(f"/v1/goals/{accepted[0]}/cancel", headers=headers).status_code == 200
    again = client.post("/v1/goals", json=slow_plan(), headers=headers)
    assert again.status_code == 202, again.text
    for goal_id in accepted[1:] + [again.json()["id"]]:
        client.post(f"/v1/goals/{goal_id}/cancel", headers=headers)


def test_a_tenant_daily_usd_ceiling_ends_llm_calls(gateways, db) -> None:
    client = gateways[0]
    tenant, headers = tenant_with_key("ceiling", daily_usd=0.000001)
    request = {"goal": "What is 17 * 23?", "provider": "openai"}  # gpt-4.1-mini, priced
    response = client.post("/v1/goals", json=request, headers=headers)
    assert response.status_code == 202, response.text
    goal = wait_for_goal(uuid.UUID(response.json()["id"]))
    assert goal.status == "failed"
    assert goal.error.startswith("budget_exceeded: tenant daily ceiling $0.000001"), goal.error
    # A tenant with room pays for its calls: settled on its row of the day, nothing held.
    rich, rich_headers = tenant_with_key("rich", daily_usd=5.0)
    response = client.post("/v1/goals", json=request, headers=rich_headers)
    goal = wait_for_goal(uuid.UUID(response.json()["id"]))
    assert goal.status == "succeeded", goal.error
    with db.connect() as connection:
        rows = {row.name: row for row in connection.execute(text(
            "SELECT t.name, d.spent_usd, d.reserved_usd FROM tenant_daily_spend d "
            "JOIN tenants t ON t.id = d.tenant_id WHERE t.name IN (:a, :b)"),
            {"a": tenant, "b": rich})}
        cost = connection.execute(text(
            "SELECT sum(cost_usd) FROM llm_calls WHERE goal_id = :g"), {"g": goal.id}).scalar()
    assert rows[tenant].spent_usd == 0 and rows[tenant].reserved_usd == 0
    assert cost > 0 and rows[rich].spent_usd == cost and rows[rich].reserved_usd == 0


def test_max_tokens_and_cost_are_capped_at_the_tenant_ceiling(gateways, db) -> None:
    client = gateways[0]
    _, headers = tenant_with_key("capped", max_tokens_per_goal=5_000,
                                 max_cost_usd_per_goal=0.05)
    asked = client.post("/v1/goals", headers=headers,
                        json={**QUESTION, "max_tokens": 100_000, "max_cost_usd": 5.0})
    unset = client.post("/v1/goals", json=QUESTION, headers=headers)
    below = client.post("/v1/goals", headers=headers,
                        json={**QUESTION, "max_tokens": 4_000, "max_cost_usd": 0.01})
    budgets = []
    with db.connect() as connection:
        for response in (asked, unset, below):
            assert response.status_code == 202, response.text
            budgets.append(tuple(connection.execute(text(
                "SELECT max_tokens, max_cost_usd FROM goals WHERE id = :g"),
                {"g": response.json()["id"]}).one()))
    assert budgets == [(5_000, Decimal("0.05")), (5_000, Decimal("0.05")),
                       (4_000, Decimal("0.01"))]


def test_models_outside_the_allowlist_are_422(gateways) -> None:
    client = gateways[0]
    _, headers = tenant_with_key("models")
    refused = client.post("/v1/goals", headers=headers, json={
        **QUESTION, "provider": "anthropic", "model": "claude-opus-4-1"})
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "'anthropic:claude-opus-4-1' is not allowed" in detail
    assert "sim:*" in detail and "openai:gpt-4.1-mini" in detail
    with overridden_settings(ALLOWED_MODELS="sim:*,anthropic:claude-opus-*"):
        allowed = client.post("/v1/goals", headers=headers, json={
            **QUESTION, "provider": "anthropic", "model": "claude-opus-4-1"})
        assert allowed.status_code == 202, allowed.text
        client.post(f"/v1/goals/{allowed.json()['id']}/cancel", headers=headers)
        # A tenant's own list replaces the global one.
        _, sim_only = tenant_with_key("simonly", allowed_models="sim:*")
        narrowed = client.post("/v1/goals", headers=sim_only, json={
            **QUESTION, "provider": "anthropic", "model": "claude-opus-4-1"})
        assert narrowed.status_code == 422
        assert narrowed.json()["detail"].endswith("(allowed: sim:*)")
        assert client.post("/v1/goals", json=QUESTION, headers=sim_only).status_code == 202


def test_a_model_without_a_price_is_refused_until_priced(gateways) -> None:
    client = gateways[0]
    _, headers = tenant_with_key("unpriced")
    request = {**QUESTION, "provider": "openai", "model": "gpt-unpriced-9"}
    with overridden_settings(ALLOWED_MODELS="sim:*,openai:*"):
        refused = client.post("/v1/goals", json=request, headers=headers)
        assert refused.status_code == 422
        assert "'openai:gpt-unpriced-9' has no known price" in refused.json()["detail"]
        assert "MODEL_PRICES" in refused.json()["detail"]
        with overridden_settings(MODEL_PRICES="openai:gpt-unpriced-9=0.5/1.5"):
            accepted = client.post("/v1/goals", json=request, headers=headers)
            assert accepted.status_code == 202, accepted.text
            client.post(f"/v1/goals/{accepted.json()['id']}/cancel", headers=headers)


def test_the_gateway_answers_503_when_the_quota_store_is_down(gateways) -> None:
    client = gateways[0]
    _, headers = tenant_with_key("noredis")
    with overridden_settings(REDIS_URL="redis://127.0.0.1:9/0"):
        response = client.post("/v1/goals", json=QUESTION, headers=headers)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert client.post("/v1/goals", json=QUESTION, headers=headers).status_code == 202


def test_the_cli_sets_and_resets_a_tenant_s_limits(services) -> None:
    name, _ = tenant_with_key("cli")
    runner = CliRunner()
    result = runner.invoke(cli, ["keys", "tenant", name, "--goals-per-minute", "5",
                                 "--daily-usd", "2.5", "--models", "sim:*"])
    assert result.exit_code == 0, result.output
    assert "goals-per-minute: 5" in result.output and "models: sim:*" in result.output
    result = runner.invoke(cli, ["keys", "tenant", name, "--default", "goals-per-minute"])
    assert "goals-per-minute: (setting)" in result.output and "daily-usd: 2.5" in result.output
    bad = runner.invoke(cli, ["keys", "tenant", name, "--models", "gpt-4o"])
    assert bad.exit_code == 2 and "provider:model" in bad.output
    missing = runner.invoke(cli, ["keys", "tenant", "no-such-tenant-x", "--daily-usd", "1"])
    assert missing.exit_code == 2 and "no tenant named" in missing.output


def test_quotas_can_be_turned_off_for_a_single_tenant_deployment(gateways) -> None:
    first, _ = gateways
    _, headers = tenant_with_key("unlimited", goals_per_minute=1)
    with overridden_settings(TENANT_QUOTAS_ENABLED=False):
        unmetered = [first.post("/v1/goals", json=QUESTION, headers=headers).status_code
                     for _ in range(3)]
    assert unmetered == [202, 202, 202]
    # On again: the quota counts from here (none of the three used it): one, then 429.
    metered = [first.post("/v1/goals", json=QUESTION, headers=headers).status_code
               for _ in range(2)]
    assert metered == [202, 429]
