"""The HTTP gateway, in process, against the real services and workers."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient


@pytest.fixture()
def client(workers):
    from api_gateway.app import create_app

    with TestClient(create_app()) as test_client:
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
    assert client.get("/v1/goals/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/v1/goals/not-a-uuid").status_code == 422


def test_health_and_openapi(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    assert {"/v1/goals", "/v1/goals/{goal_id}", "/healthz"} <= set(spec["paths"])
