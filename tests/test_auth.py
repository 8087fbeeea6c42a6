"""API keys, scopes and tenants, through the real gateway, Postgres and workers."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from shared import auth
from shared.errors import AuthenticationError
from shared.settings import overridden_settings
from taskforce_cli.main import app as cli


@pytest.fixture()
def client(workers):
    """The gateway with authentication on (the default), whatever the environment says."""
    from api_gateway.app import create_app

    with overridden_settings(AUTH_ENABLED=True), TestClient(create_app()) as test_client:
        yield test_client


def tenant_name(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_key(label: str, *scopes: str) -> str:
    return auth.create_key(tenant=tenant_name(label), scopes=scopes or auth.DEFAULT_SCOPES).key


PLAN = {"steps": [{"id": 1, "kind": "tool", "tool": "echo", "args": {"value": 1}},
                  {"id": 2, "kind": "synthesize", "args": {"inputs": ["$1"]}, "depends_on": [1]}]}


def test_missing_invalid_and_revoked_keys_are_401(client) -> None:
    created = auth.create_key(tenant=tenant_name("a"))
    unknown_goal = f"/v1/goals/{uuid.uuid4()}"
    wrong_secret = f"tf_{created.key_id}_{'x' * 43}"
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, bearer("tf_nope_nope"),
                    bearer("not-a-key"), bearer(wrong_secret)):
        for method, path in (("GET", unknown_goal), ("POST", "/v1/goals"),
                             ("POST", f"{unknown_goal}/cancel")):
            response = client.request(method, path, headers=headers, json={"goal": "x"})
            assert response.status_code == 401, (headers, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
    assert client.get(unknown_goal, headers=bearer(created.key)).status_code == 404
    assert auth.revoke_key(created.key_id)
    revoked = client.get(unknown_goal, headers=bearer(created.key))
    assert revoked.status_code == 401
    assert revoked.headers["www-authenticate"] == "Bearer"
    assert revoked.json() == {"detail": "this API key has been revoked"}
    # Health, the schema and the docs stay open.
    assert client.get("/healthz").status_code == 200
    assert client.get("/docs").status_code == 200
    assert "APIKey" in client.get("/openapi.json").json()["components"]["securitySchemes"]


def test_a_missing_scope_is_403(client) -> None:
    reader = new_key("reader", auth.GOALS_READ)
    refused = client.post("/v1/goals", json={"goal": "What is 6 * 7?"}, headers=bearer(reader))
    assert refused.status_code == 403
    assert refused.json() == {"detail": "this API key lacks the scope 'goals:submit'"}
    submitter = new_key("submitter")
    assert auth.PLANS_SUBMIT not in auth.DEFAULT_SCOPES
    no_plans = client.post("/v1/goals", json={"goal": "echo", "plan": PLAN},
                           headers=bearer(submitter))
    assert no_plans.status_code == 403
    assert "plans:submit" in no_plans.json()["detail"]
    accepted = client.post("/v1/goals", json={"goal": "What is 6 * 7?"},
                           headers=bearer(submitter))
    assert accepted.status_code == 202
    goal_url = accepted.json()["url"]
    assert client.post(f"{goal_url}/cancel", headers=bearer(reader)).status_code == 403
    planner = new_key("planner", auth.GOALS_SUBMIT, auth.PLANS_SUBMIT)
    assert client.post("/v1/goals", json={"goal": "echo", "plan": PLAN},
                       headers=bearer(planner)).status_code == 202
    assert client.get(goal_url, headers=bearer(planner)).status_code == 403


def test_another_tenants_goal_is_a_404_like_an_unknown_one(client) -> None:
    owner, stranger = new_key("owner"), new_key("stranger")
    goal_url = client.post("/v1/goals", json={"goal": "What is 17 * 23?"},
                           headers=bearer(owner)).json()["url"]
    goal_id = goal_url.rsplit("/", 1)[1]
    unknown_id = str(uuid.uuid4())
    for method, suffix in (("GET", ""), ("POST", "/cancel")):
        theirs = client.request(method, f"/v1/goals/{goal_id}{suffix}",
                                headers=bearer(stranger))
        unknown = client.request(method, f"/v1/goals/{unknown_id}{suffix}",
                                 headers=bearer(stranger))
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.json() == {"detail": f"no goal with id {goal_id}"}
        assert unknown.json() == {"detail": f"no goal with id {unknown_id}"}
        assert theirs.headers.keys() == unknown.headers.keys()
    mine = client.get(goal_url, headers=bearer(owner))
    assert mine.status_code == 200
    assert mine.json()["status"] != "cancelled"


def test_idempotency_keys_are_per_tenant(client) -> None:
    first, second = new_key("first"), new_key("second")
    body = {"goal": "What is 2 + 2?"}
    same = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    a = client.post("/v1/goals", json=body, headers=bearer(first) | same)
    b = client.post("/v1/goals", json=body, headers=bearer(second) | same)
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]
    assert "idempotent-replayed" not in a.headers and "idempotent-replayed" not in b.headers
    again = client.post("/v1/goals", json=body, headers=bearer(first) | same)
    assert again.json()["id"] == a.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"


def test_only_the_hash_of_the_secret_is_stored(db) -> None:
    created = auth.create_key(tenant=tenant_name("stored"), scopes=[auth.GOALS_READ])
    secret = created.key.split("_", 2)[2]
    assert len(secret) >= 22  # token_urlsafe: >= 128 bits in base64url
    with db.connect() as connection:
        rows = connection.execute(text("SELECT row_to_json(k)::text FROM api_keys k")).scalars()
        stored = "\n".join(rows)
        digest = connection.execute(text("SELECT secret_sha256 FROM api_keys WHERE key_id = :k"),
                                    {"k": created.key_id}).scalar_one()
    assert created.key_id in stored
    assert secret not in stored and created.key not in stored
    assert digest == hashlib.sha256(secret.encode()).hexdigest()


def test_keys_cli_creates_lists_and_revokes(services) -> None:
    runner = CliRunner()
    tenant = tenant_name("cli")
    created = runner.invoke(cli, ["keys", "create", "--tenant", tenant,
                                  "--scope", "goals:read", "--scope", "plans:submit"])
    assert created.exit_code == 0, created.output
    assert "will not be shown again" in created.stderr
    key = next(w for w in created.stdout.split() if w.startswith("tf_"))
    principal = auth.verify_key(key)
    assert (principal.tenant_name, principal.scopes) == (tenant, {"goals:read", "plans:submit"})

    listed = runner.invoke(cli, ["keys", "list", "--tenant", tenant, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["key_id"], r["tenant"], r["scopes"], r["revoked_at"]) for r in rows] == [
        (principal.key_id, tenant, ["goals:read", "plans:submit"], None)]
    assert key.split("_", 2)[2] not in listed.stdout and "sha256" not in listed.stdout
    table = runner.invoke(cli, ["keys", "list"])
    assert table.exit_code == 0 and principal.key_id in table.stdout

    revoked = runner.invoke(cli, ["keys", "revoke", principal.key_id])
    assert revoked.exit_code == 0, revoked.output
    with pytest.raises(AuthenticationError, match="revoked"):
        auth.verify_key(key)
    rows = runner.invoke(cli, ["keys", "list", "--tenant", tenant, "--json"]).stdout
    assert json.loads(rows)["revoked_at"] is not None
    assert runner.invoke(cli, ["keys", "revoke", "nosuchkey"]).exit_code == 2
    bad = runner.invoke(cli, ["keys", "create", "--tenant", tenant, "--scope", "root"])
    assert bad.exit_code == 2 and "unknown scope" in bad.stderr


def test_the_default_key_scopes_leave_plans_and_admin_out(services) -> None:
    created = auth.create_key(tenant=tenant_name("defaults"))
    assert created.scopes == ("goals:submit", "goals:read", "goals:cancel", "memory:read",
                              "memory:write")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "gateway.example.com"])
def test_the_gateway_refuses_to_serve_unauthenticated_off_loopback(host) -> None:
    with overridden_settings(AUTH_ENABLED=False):
        result = CliRunner().invoke(cli, ["gateway", "--host", host, "--no-migrate"])
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert f"refusing to serve on {host} with AUTH_ENABLED=false" in message


def test_loopback_addresses() -> None:
    assert all(map(auth.is_loopback, ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"]))
    assert not any(map(auth.is_loopback, ["0.0.0.0", "::", "", "192.168.1.1", "localhost.x"]))
