"""The v1 listing and batches, through the real gateway (authentication on) on real
Redis, Postgres and workers: filters, cursor pages, tenant scoping, batches as a JSON
array and as JSONL, their progress, cost and results, and the refusals."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from shared import auth
from shared.settings import overridden_settings

FINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture()
def client(workers):
    from api_gateway.app import create_app

    with overridden_settings(AUTH_ENABLED=True), TestClient(create_app()) as test_client:
        yield test_client


def key_for(label: str, *scopes: str) -> dict[str, str]:
    """Bearer headers of a new key for a tenant of its own."""
    tenant = f"{label}-{uuid.uuid4().hex[:8]}"
    key = auth.create_key(tenant=tenant, scopes=scopes or auth.DEFAULT_SCOPES).key
    return {"Authorization": f"Bearer {key}"}


def quick_plan(value: int) -> dict:
    return {"steps": [
        {"id": 1, "kind": "tool", "tool": "echo", "args": {"text": f"v{value}"}},
        {"id": 2, "kind": "synthesize",
         "args": {"instruction": "report the value", "inputs": ["$1"]}},
    ]}


def wait_ended(client, headers, goal_ids, timeout=90.0) -> None:
    deadline = time.monotonic() + timeout
    pending = set(goal_ids)
    while pending and time.monotonic() < deadline:
        for goal_id in list(pending):
            if client.get(f"/v1/goals/{goal_id}", headers=headers).json()["status"] in FINAL:
                pending.discard(goal_id)
        time.sleep(0.1)
    assert not pending, f"goals still running: {pending}"


def all_pages(client, headers, **params) -> list[dict]:
    seen, cursor = [], None
    for _ in range(50):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/goals", headers=headers, params=query).json()
        seen.extend(body["goals"])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pages never ended")


def test_listing_filters_pages_and_tenants(client) -> None:
    headers = key_for("list")
    other = key_for("list-other")
    submitted = []
    for n in range(5):
        response = client.post("/v1/goals", headers=headers, json={
            "goal": f"What is {n} + 1?", "metadata": {"team": "blue" if n % 2 else "red",
                                                     "n": n},
            **({"session_id": "chat-7"} if n >= 3 else {})})
        assert response.status_code == 202, response.text
        submitted.append(response.json()["id"])
    client.post("/v1/goals", headers=other, json={"goal": "What is 2 + 2?",
                                                  "metadata": {"team": "blue"}})

    page = client.get("/v1/goals", headers=headers, params={"limit": 2}).json()
    assert len(page["goals"]) == 2 and page["next_cursor"]
    listed = all_pages(client, headers, limit=2)
    assert [g["id"] for g in listed] == submitted[::-1]  # newest first, each once
    stamps = [(g["created_at"], g["id"]) for g in listed]
    assert stamps == sorted(stamps, reverse=True)

    blue = all_pages(client, headers, metadata="team:blue")
    assert sorted(g["metadata"]["n"] for g in blue) == [1, 3]
    both = all_pages(client, headers, metadata=["team:blue", "n:3"])
    assert [g["id"] for g in both] == [submitted[3]]
    assert [g["id"] for g in all_pages(client, headers, provider="sim",
                                       model="sim-planner-1")] == submitted[::-1]
    assert all_pages(client, headers, model="another") == []
    assert [g["id"] for g in all_pages(client, headers, session="chat-7")] == [
        submitted[4], submitted[3]]
    assert all_pages(client, headers, session="chat-8") == []
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert all_pages(client, headers, created_after=later) == []
    assert len(all_pages(client, headers, created_before=later)) == 5

    wait_ended(client, headers, submitted)
    succeeded = all_pages(client, headers, status="succeeded")
    assert sorted(g["id"] for g in succeeded) == sorted(submitted)
    assert all_pages(client, headers, status=["failed", "cancelled"]) == []
    assert all(g["tokens"] > 0 and g["cost_usd"] == 0.0 for g in succeeded)  # sim is free

    theirs = all_pages(client, other)
    assert len(theirs) == 1 and theirs[0]["id"] not in submitted


@pytest.mark.parametrize(("params", "fragment"), [
    ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
    ({"limit": 0}, "limit"),
    ({"limit": 500}, "limit: from 1 to 200"),
    ({"status": "sleeping"}, "status"),
    ({"session": "not a session id!"}, "session"),
    ({"metadata": "no-colon"}, "key:value"),
    ({"metadata": [f"k{i}:v" for i in range(6)]}, "metadata"),
    ({"created_after": "2026-01-02T00:00:00Z", "created_before": "2026-01-01T00:00:00Z"},
     "earlier"),
])
def test_bad_listing_parameters_are_a_422_with_a_reason(client, params, fragment) -> None:
    response = client.get("/v1/goals", headers=key_for("bad"), params=params)
    assert response.status_code == 422
    assert fragment in response.text


def test_a_json_batch_runs_and_reports_progress_cost_and_results(client) -> None:
    headers = key_for("batch", *auth.DEFAULT_SCOPES, auth.PLANS_SUBMIT)
    items = [{"id": f"q{n}", "goal": f"echo {n}", "plan": quick_plan(n),
              "metadata": {"set": "json"}} for n in range(3)]
    items.append({"goal": "What is 6 * 7?", "idempotency_key": "batch-item-4"})
    response = client.post("/v1/batches", headers=headers, json=items)
    assert response.status_code == 202, response.text
    created = response.json()
    assert (created["total"], created["accepted"], created["rejected"]) == (4, 4, 0)
    assert [i["id"] for i in created["items"]] == ["q0", "q1", "q2", "3"]
    goal_ids = [i["goal_id"] for i in created["items"]]
    batch_url = created["url"]

    wait_ended(client, headers, goal_ids)
    report = client.get(batch_url, headers=headers).json()
    assert report["done"] is True
    assert report["counts"] == {"succeeded": 4}
    goals = [client.get(f"/v1/goals/{g}", headers=headers).json() for g in goal_ids]
    assert report["tokens"] == sum(g["tokens"] for g in goals) > 0
    assert report["cost_usd"] == pytest.approx(sum(g["cost_usd"] for g in goals))

    results = client.get(created["results_url"], headers=headers)
    assert results.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in results.text.splitlines()]
    assert [(r["id"], r["goal_id"], r["status"]) for r in lines] == [
        (i["id"], i["goal_id"], "succeeded") for i in created["items"]]
    assert "[simulated]" in lines[3]["answer"] and lines[0]["latency_s"] > 0
    assert {"tokens", "cost_usd", "steps", "answer", "error"} <= set(lines[0])

    in_list = all_pages(client, headers, batch=created["id"])
    assert sorted(g["id"] for g in in_list) == sorted(goal_ids)
    assert all(g["batch_id"] == created["id"] for g in in_list)

    again = client.post("/v1/batches", headers=headers, json=[items[3]]).json()
    assert again["items"][0]["goal_id"] == goal_ids[3]  # replayed by its idempotency key
    assert again["items"][0]["status_code"] == 200
    assert client.get(again["url"], headers=headers).json()["counts"] == {"succeeded": 1}


def test_a_jsonl_batch_over_the_quota_records_what_was_refused(client) -> None:
    headers = key_for("jsonl")
    body = "\n".join(json.dumps({"id": f"line{n}", "goal": f"What is {n} * 3?"})
                     for n in range(3)) + "\n"
    with overridden_settings(AUTH_ENABLED=True, TENANT_GOALS_PER_MINUTE=2):
        response = client.post("/v1/batches", headers={
            **headers, "content-type": "application/x-ndjson"}, content=body)
    assert response.status_code == 202, response.text
    created = response.json()
    assert (created["accepted"], created["rejected"]) == (2, 1)
    refused = created["items"][2]
    assert refused["goal_id"] is None and refused["status_code"] == 429
    assert "per minute" in refused["error"]

    wait_ended(client, headers, [i["goal_id"] for i in created["items"][:2]])
    report = client.get(created["url"], headers=headers).json()
    assert report["rejections"] == [{"index": 2, "id": "line2", "status_code": 429,
                                     "error": refused["error"]}]
    lines = [json.loads(line) for line in
             client.get(created["results_url"], headers=headers).text.splitlines()]
    assert [r["status"] for r in lines] == ["succeeded", "succeeded", "not_submitted"]
    assert lines[2]["error"] == refused["error"]

    assert client.get(created["url"], headers=key_for("stranger")).status_code == 404
    assert client.get(created["results_url"], headers=key_for("stranger")).status_code == 404


@pytest.mark.parametrize(("content_type", "body", "fragment"), [
    ("application/json", json.dumps({"goal": "x"}), "array"),
    ("application/json", "[]", "at least one"),
    ("application/json", json.dumps([{"goal": "ok"}, {"goal": "  "}]), "item 1: goal"),
    ("application/json", json.dumps([{"goal": "ok", "colour": "red"}]), "item 0: colour"),
    ("application/x-ndjson", '{"goal": "ok"}\n{"goal": ', "line 2"),
    ("text/csv", "goal\nx\n", "application/json"),
    ("application/json", json.dumps([{"goal": f"g{n}"} for n in range(4)]), "at most 3"),
])
def test_an_invalid_batch_is_refused_whole(client, content_type, body, fragment) -> None:
    headers = key_for("invalid")
    with overridden_settings(AUTH_ENABLED=True, BATCH_MAX_GOALS=3):
        response = client.post("/v1/batches", headers={**headers, "content-type": content_type},
                               content=body)
    assert response.status_code == 422, response.text
    assert fragment in response.text
    assert client.get("/v1/goals", headers=headers).json()["goals"] == []  # nothing stored


def test_a_batch_with_a_plan_needs_the_plans_scope(client) -> None:
    headers = key_for("noplans")
    response = client.post("/v1/batches", headers=headers,
                           json=[{"goal": "echo", "plan": quick_plan(1)}])
    assert response.status_code == 403
    assert "plans:submit" in response.text
    assert client.get("/v1/goals", headers=headers).json()["goals"] == []
