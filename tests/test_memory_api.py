"""Long-term memory through the real gateway: writes, de-duplication, supersession,
TTL, search, deletion, scopes, bounds, quotas and tenant isolation."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from shared import auth, quotas
from shared.settings import overridden_settings

MEMORY = (auth.MEMORY_READ, auth.MEMORY_WRITE)


@pytest.fixture()
def gateway(services):
    from api_gateway.app import create_app

    with overridden_settings(AUTH_ENABLED=True), TestClient(create_app()) as client:
        yield client


def tenant(label: str, scopes=MEMORY, **limits) -> dict[str, str]:
    name = f"{label}-{uuid.uuid4().hex[:8]}"
    key = auth.create_key(tenant=name, scopes=scopes).key
    if limits:
        quotas.set_tenant_limits(name, limits)
    return {"Authorization": f"Bearer {key}"}


def remember(client: TestClient, headers: dict[str, str], content: str, **extra):
    return client.post("/v1/memory", json={"content": content, **extra}, headers=headers)


def test_a_fact_is_stored_once_and_read_back(gateway) -> None:
    headers = tenant("dedupe")
    first = remember(gateway, headers, "Ada's favourite language is OCaml.", namespace="user:ada")
    assert first.status_code == 201, first.text
    again = remember(gateway, headers, "Ada's favourite language is OCaml.", namespace="user:ada")
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["item"]["id"] == first.json()["item"]["id"]
    other_ns = remember(gateway, headers, "Ada's favourite language is OCaml.")
    assert other_ns.status_code == 201
    assert other_ns.json()["item"]["id"] != first.json()["item"]["id"]
    item = gateway.get(f"/v1/memory/{first.json()['item']['id']}", headers=headers).json()
    assert item["content"] == "Ada's favourite language is OCaml." and item["valid_to"] is None
    listed = gateway.get("/v1/memory", params={"namespace": "user:ada"}, headers=headers).json()
    assert [i["id"] for i in listed] == [first.json()["item"]["id"]]


def test_a_newer_fact_supersedes_an_older_one_which_is_kept(gateway) -> None:
    headers = tenant("supersede")
    old = remember(gateway, headers, "The office is in Leeds.").json()["item"]
    new = remember(gateway, headers, "The office moved to York.", supersedes=old["id"])
    assert new.status_code == 201 and new.json()["superseded"] == old["id"]
    kept = gateway.get(f"/v1/memory/{old['id']}", headers=headers).json()
    assert kept["valid_to"] is not None and kept["superseded_by"] == new.json()["item"]["id"]
    found = gateway.get("/v1/memory", params={"q": "office"}, headers=headers).json()
    assert [h["content"] for h in found["hits"]] == ["The office moved to York."]
    twice = remember(gateway, headers, "The office is in Hull.", supersedes=old["id"])
    assert twice.status_code == 409, twice.text
    unknown = remember(gateway, headers, "Something else.", supersedes=str(uuid.uuid4()))
    assert unknown.status_code == 404
    # The refused writes stored nothing.
    live = gateway.get("/v1/memory", headers=headers).json()
    assert [i["content"] for i in live] == ["The office moved to York."]


def test_recall_finds_facts_by_their_words_best_first(gateway) -> None:
    headers = tenant("recall")
    for fact in ("Bruno is allergic to peanuts.", "The deploy window is Tuesday 14:00 UTC.",
                 "Bruno's manager is Carla.", "Peanut butter is stored in the pantry."):
        assert remember(gateway, headers, fact).status_code == 201
    found = gateway.get("/v1/memory", params={"q": "Is Bruno allergic to peanuts?"},
                        headers=headers).json()
    assert found["hits"][0]["content"] == "Bruno is allergic to peanuts."
    assert found["mode"] in ("hybrid", "full_text")
    assert all(h["score"] > 0 for h in found["hits"])
    assert "deploy" not in " ".join(h["content"] for h in found["hits"])


def test_an_expired_item_is_hidden_at_once_and_deleted_by_cleanup(gateway, db) -> None:
    headers = tenant("ttl")
    short = remember(gateway, headers, "The door code is 4411.", ttl_s=60).json()["item"]
    assert short["expires_at"] is not None
    with db.begin() as connection:  # let its minute pass
        connection.execute(text("UPDATE memory_items SET expires_at = now() - interval '1 s' "
                                "WHERE id = :id"), {"id": short["id"]})
    assert gateway.get(f"/v1/memory/{short['id']}", headers=headers).status_code == 404
    assert gateway.get("/v1/memory", params={"q": "door code"},
                       headers=headers).json()["hits"] == []
    from shared.memory.cleanup import run_cleanup

    run_cleanup()
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM memory_items WHERE id = :id"),
                                  {"id": short["id"]}).scalar() == 0


def test_a_repeated_fact_keeps_the_longer_ttl(gateway) -> None:
    headers = tenant("ttl-repeat")
    first = remember(gateway, headers, "Standup is at 9:30.", ttl_s=60).json()["item"]
    longer = remember(gateway, headers, "Standup is at 9:30.", ttl_s=86_400).json()["item"]
    assert longer["id"] == first["id"] and longer["expires_at"] > first["expires_at"]
    forever = remember(gateway, headers, "Standup is at 9:30.").json()["item"]
    assert forever["expires_at"] is None
    shorter = remember(gateway, headers, "Standup is at 9:30.", ttl_s=5).json()["item"]
    assert shorter["expires_at"] is None


def test_delete_removes_the_row_for_good(gateway, db) -> None:
    headers = tenant("delete")
    item = remember(gateway, headers, "Temporary note.").json()["item"]
    assert gateway.delete(f"/v1/memory/{item['id']}", headers=headers).status_code == 204
    assert gateway.get(f"/v1/memory/{item['id']}", headers=headers).status_code == 404
    assert gateway.delete(f"/v1/memory/{item['id']}", headers=headers).status_code == 404
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM memory_items WHERE id = :id"),
                                  {"id": item["id"]}).scalar() == 0


def test_another_tenants_items_are_as_absent_as_unknown_ones(gateway) -> None:
    owner, stranger = tenant("owner"), tenant("stranger")
    item = remember(gateway, owner, "The launch code word is Heron.").json()["item"]
    assert gateway.get(f"/v1/memory/{item['id']}", headers=stranger).status_code == 404
    assert gateway.delete(f"/v1/memory/{item['id']}", headers=stranger).status_code == 404
    assert gateway.get("/v1/memory", params={"q": "launch code word Heron"},
                       headers=stranger).json()["hits"] == []
    assert remember(gateway, stranger, "x", supersedes=item["id"]).status_code == 404
    # The same content is stored separately per tenant: no cross-tenant de-duplication.
    theirs = remember(gateway, stranger, "The launch code word is Heron.")
    assert theirs.status_code == 201 and theirs.json()["item"]["id"] != item["id"]
    assert gateway.get(f"/v1/memory/{item['id']}", headers=owner).status_code == 200


def test_scopes_are_required(gateway) -> None:
    reader = tenant("reader", scopes=(auth.MEMORY_READ,))
    goals_only = tenant("goals", scopes=(auth.GOALS_SUBMIT, auth.GOALS_READ))
    assert remember(gateway, reader, "nope").status_code == 403
    assert gateway.get("/v1/memory", params={"q": "x"}, headers=goals_only).status_code == 403
    assert gateway.get("/v1/memory", params={"q": "x"}).status_code == 401
    assert auth.MEMORY_READ in auth.DEFAULT_SCOPES and auth.MEMORY_WRITE in auth.DEFAULT_SCOPES


@pytest.mark.parametrize("body", [
    {"content": ""},
    {"content": "   "},
    {"content": "x" * 4_001},
    {"content": "ok", "namespace": "Has Spaces"},
    {"content": "ok", "namespace": "n" * 65},
    {"content": "ok", "ttl_s": 0},
    {"content": "ok", "ttl_s": 0.5},
    {"content": "ok", "ttl_s": 400 * 365 * 86_400},
    {"content": "ok", "extra": 1},
])
def test_bad_writes_are_refused_with_a_reason(gateway, body) -> None:
    answer = gateway.post("/v1/memory", json=body, headers=tenant("bounds"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]


def test_the_item_quota_refuses_writes_with_429(gateway) -> None:
    headers = tenant("quota", memory_max_items=2)
    assert remember(gateway, headers, "one").status_code == 201
    assert remember(gateway, headers, "two").status_code == 201
    refused = remember(gateway, headers, "three")
    assert refused.status_code == 429 and "memory quota" in refused.json()["detail"]
    assert remember(gateway, headers, "two").status_code == 200  # a repeat stores nothing new
    first = gateway.get("/v1/memory", headers=headers).json()[-1]
    assert gateway.delete(f"/v1/memory/{first['id']}", headers=headers).status_code == 204
    assert remember(gateway, headers, "three").status_code == 201  # room again


def test_the_namespace_cap_refuses_writes_with_429(gateway) -> None:
    headers = tenant("ns-cap")
    with overridden_settings(MEMORY_NAMESPACE_MAX_ITEMS=1):
        assert remember(gateway, headers, "first", namespace="small").status_code == 201
        refused = remember(gateway, headers, "second", namespace="small")
        assert refused.status_code == 429 and "'small'" in refused.json()["detail"]
        assert remember(gateway, headers, "elsewhere", namespace="other").status_code == 201


def test_concurrent_writes_of_one_fact_store_it_once(gateway, db) -> None:
    from concurrent.futures import ThreadPoolExecutor

    headers = tenant("race")
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: remember(gateway, headers, "Same fact, six writers."),
                                range(6)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
    assert len({a.json()["item"]["id"] for a in answers}) == 1
