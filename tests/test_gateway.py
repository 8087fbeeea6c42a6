"""The HTTP gateway, in process, against the real services and workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from shared.settings import overridden_settings
from tests.conftest import REPO


@pytest.fixture()
def client(workers):
    """The gateway with authentication off (tests/test_auth.py covers keys)."""
    from api_gateway.app import create_app

    with overridden_settings(AUTH_ENABLED=False), TestClient(create_app()) as test_client:
        yield test_client


def test_a_goal_round_trips_through_the_gateway(client) -> None:
    response = client.post("/v1/goals", json={
        "goal": "Were Scott Derrickson and Ed Wood of the same nationality?",
        "metadata": {"source": "test"},
    })
    assert response.status_code == 202, response.text
    goal_id = response.json()["id"]
    assert response.json()["url"] == f"/v1/goals/{goal_id}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(f"/v1/goals/{goal_id}").json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.05)
    assert body["status"] == "succeeded", body["error"]
    assert body["metadata"] == {"source": "test"}
    assert (body["provider"], body["model"], body["simulated"]) == ("sim", "sim-planner-1", True)
    assert body["answer"]
    assert body["tokens"] == body["input_tokens"] + body["output_tokens"] > 0
    lookups = [s for s in body["steps"] if s["tool"] == "search"]
    assert len(lookups) == 2
    assert all(s["started_at"] and s["finished_at"] for s in body["steps"])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "goal"),
        ({"goal": "   "}, "blank"),
        ({"goal": "x", "colour": "red"}, "colour"),
        ({"goal": "x", "provider": "nobody"}, "unknown provider 'nobody'"),
        ({"goal": "x", "plan": {"steps": [{"id": 1, "kind": "synthesize", "args": {},
                                            "depends_on": [4]}]}},
         "plan_invalid: step 1: dangling reference to step 4"),
    ],
)
def test_a_malformed_request_gets_a_422_with_a_reason(client, body, fragment) -> None:
    response = client.post("/v1/goals", json=body)
    assert response.status_code == 422
    assert fragment in response.text


def test_unknown_and_malformed_ids(client) -> None:
    response = client.get("/v1/goals/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json() == {"detail": "no goal with id 00000000-0000-0000-0000-000000000000"}
    assert client.get("/v1/goals/not-a-uuid").status_code == 422
    missing = client.post("/v1/goals/00000000-0000-0000-0000-000000000000/cancel")
    assert missing.status_code == 404


def test_cancelling_a_finished_goal_is_a_409(client) -> None:
    accepted = client.post("/v1/goals", json={"goal": "What is 17 * 23?"}).json()
    deadline = time.monotonic() + 60
    while client.get(accepted["url"]).json()["status"] != "succeeded":
        assert time.monotonic() < deadline, "the goal did not succeed in 60 s"
        time.sleep(0.05)
    response = client.post(f"{accepted['url']}/cancel")
    assert response.status_code == 409
    assert "has already succeeded" in response.json()["detail"]


# The gateway in a process of its own, pointed at a broker or a database that is not
# there: it must answer 503 with Retry-After, never 500.
_GATEWAY_PROBE = """
import json, sys
from fastapi.testclient import TestClient
from api_gateway.app import create_app
with TestClient(create_app(), raise_server_exceptions=False) as client:
    method, path, body = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    r = client.request(method, path, json=body or None)
    print(json.dumps({"status": r.status_code, "body": r.json(),
                      "retry_after": r.headers.get("retry-after")}))
"""


def _probe(env: dict[str, str], method: str, path: str, body: dict | None = None) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _GATEWAY_PROBE, method, path, json.dumps(body or {})],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env=dict(os.environ) | {"DB_RETRY_MAX_S": "1", "AUTH_ENABLED": "false"} | env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_an_unreachable_broker_is_a_503_with_retry_after(services) -> None:
    answer = _probe({**services, "REDIS_URL": "redis://127.0.0.1:9/0"},
                    "POST", "/v1/goals", {"goal": "What is 17 * 23?"})
    assert answer["status"] == 503, answer
    assert answer["retry_after"] == "2"
    assert answer["body"]["detail"].startswith("message broker unavailable")


def test_an_unreachable_database_is_a_503_with_retry_after(services) -> None:
    down = "postgresql+psycopg://taskforce@127.0.0.1:9/none?connect_timeout=2"
    answer = _probe({**services, "DATABASE_URL": down}, "GET", f"/v1/goals/{uuid.uuid4()}")
    assert answer["status"] == 503, answer
    assert answer["retry_after"] == "2"
    assert answer["body"] == {"detail": "database unavailable, try again shortly"}


def test_health_and_openapi(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    assert {"/v1/goals", "/v1/goals/{goal_id}", "/healthz"} <= set(spec["paths"])
