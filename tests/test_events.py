"""``GET /v1/goals/{id}/events``: live step changes as server-sent events, read over
real HTTP while real workers run the goal; resume with ``Last-Event-ID``, heartbeats,
the bound on a connection's duration, and tenant scoping."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from shared import auth
from shared.settings import overridden_settings
from tests.support.gateway_server import serving


@pytest.fixture()
def gateway(workers) -> Iterator[str]:
    from api_gateway.app import create_app

    with overridden_settings(AUTH_ENABLED=True, EVENTS_POLL_INTERVAL_S=0.1), \
            serving(create_app()) as url:
        yield url


def bearer(*scopes: str) -> dict[str, str]:
    key = auth.create_key(tenant=f"events-{uuid.uuid4().hex[:8]}",
                          scopes=scopes or (*auth.DEFAULT_SCOPES, auth.PLANS_SUBMIT)).key
    return {"Authorization": f"Bearer {key}"}


def slow_plan(delay_s: float) -> dict:
    """Two tally steps one after the other, then the synthesis."""
    return {"steps": [
        {"id": 1, "kind": "tool", "tool": "tally", "args": {"value": 1, "delay_s": delay_s}},
        {"id": 2, "kind": "tool", "tool": "tally", "args": {"value": "$1.value",
                                                             "delay_s": delay_s}},
        {"id": 3, "kind": "synthesize",
         "args": {"instruction": "report the value", "inputs": ["$2"]}},
    ]}


def events(base: str, path: str, headers: dict[str, str], timeout: float = 60.0
           ) -> Iterator[dict]:
    """Each event (``event``, ``id``, ``data``) or comment (``comment``) as it arrives,
    until the server closes the stream."""
    with httpx.stream("GET", base + path, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        block: dict = {}
        for line in response.iter_lines():
            if line == "":
                if block:
                    yield block
                block = {}
            elif line.startswith(":"):
                yield {"comment": line[1:].strip()}
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                block[field] = json.loads(value) if field == "data" else value


def submit(base: str, headers: dict[str, str], delay_s: float) -> str:
    # A long timeout: the first submission of a process imports the vendors' SDKs.
    response = httpx.post(base + "/v1/goals", headers=headers, timeout=60,
                          json={"goal": "count slowly", "plan": slow_plan(delay_s)})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_the_stream_follows_each_step_live_and_closes_when_the_goal_ends(gateway) -> None:
    headers = bearer()
    goal_id = submit(gateway, headers, delay_s=1.0)
    received = list(events(gateway, f"/v1/goals/{goal_id}/events", headers))
    steps = [e for e in received if e.get("event") == "step"]
    by_step: dict[int, list[str]] = {}
    for event in steps:
        by_step.setdefault(event["data"]["step_id"], []).append(event["data"]["status"])
    # Each step was seen running, live, before it succeeded (its tool took 1 s).
    assert by_step[1][-2:] == ["running", "succeeded"]
    assert by_step[2][-2:] == ["running", "succeeded"]
    assert by_step[3][-1] == "succeeded"
    assert by_step[2][0] in ("pending", "queued")  # its first state came before it ran
    ids = [int(e["id"]) for e in steps]
    assert len(set(ids)) == len(ids)
    running = next(e for e in steps if e["data"]["status"] == "running")
    assert running["data"]["worker"] and running["data"]["attempt"] == 1
    assert received[-1]["event"] == "end"
    assert received[-1]["data"]["status"] == "succeeded"
    assert [e["data"]["status"] for e in received if e.get("event") == "goal"][-1] == "succeeded"

    # Resuming after the event where step 1 succeeded sends only what changed since.
    mark = next(e for e in steps if e["data"] == {**e["data"], "step_id": 1,
                                                  "status": "succeeded"})
    resumed = list(events(gateway, f"/v1/goals/{goal_id}/events",
                          {**headers, "Last-Event-ID": mark["id"]}))
    again = [(e["data"]["step_id"], e["data"]["status"]) for e in resumed
             if e.get("event") == "step"]
    assert again == [(2, "succeeded"), (3, "succeeded")]
    assert all(int(e["id"]) > int(mark["id"]) for e in resumed if e.get("event") == "step")
    assert resumed[-1]["event"] == "end"


def test_heartbeats_and_the_bound_on_a_connection(gateway) -> None:
    headers = bearer()
    goal_id = submit(gateway, headers, delay_s=2.5)
    path = f"/v1/goals/{goal_id}/events"
    with overridden_settings(EVENTS_HEARTBEAT_S=0.3, EVENTS_MAX_DURATION_S=1.5):
        first = list(events(gateway, path, headers))
        assert {"comment": "keepalive"} in first  # silence while step 1 runs
        assert not any(e.get("event") == "end" for e in first)  # cut at 1.5 s, goal running
        last_id = [e["id"] for e in first if "id" in e][-1]
        seen = [e for e in first if e.get("event") == "step"]
        while True:  # reconnect as EventSource does, from the last id
            more = list(events(gateway, path, {**headers, "Last-Event-ID": last_id}))
            seen += [e for e in more if e.get("event") == "step"]
            last_id = ([e["id"] for e in more if "id" in e] or [last_id])[-1]
            if more and more[-1].get("event") == "end":
                break
    finals = {e["data"]["step_id"]: e["data"]["status"] for e in seen}
    assert finals == {1: "succeeded", 2: "succeeded", 3: "succeeded"}


def test_another_tenants_goal_has_no_stream(gateway) -> None:
    goal_id = submit(gateway, bearer(), delay_s=0.0)
    response = httpx.get(f"{gateway}/v1/goals/{goal_id}/events", headers=bearer(), timeout=30)
    assert response.status_code == 404
    unknown = httpx.get(f"{gateway}/v1/goals/{uuid.uuid4()}/events", headers=bearer(),
                        timeout=30)
    assert unknown.status_code == 404
    assert httpx.get(f"{gateway}/v1/goals/{goal_id}/events", timeout=30).status_code == 401
