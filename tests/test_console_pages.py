"""The console's pages and its cookie, without a browser: login sets an HttpOnly,
SameSite=Strict cookie the API accepts; a state change with that cookie needs the
console's header (CSRF); every page carries a Content-Security-Policy; another tenant's
goal or batch is a 404 page; the batch and cost pages show progress and USD."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from api_gateway.auth import CONSOLE_COOKIE, CONSOLE_HEADER
from shared import auth
from shared.settings import overridden_settings


@pytest.fixture()
def app(workers):
    from api_gateway.app import create_app

    with overridden_settings(AUTH_ENABLED=True):
        yield create_app()


def new_key(*scopes: str) -> str:
    return auth.create_key(tenant=f"pages-{uuid.uuid4().hex[:8]}",
                           scopes=scopes or auth.DEFAULT_SCOPES).key


def logged_in(app, key: str) -> TestClient:
    client = TestClient(app, base_url="http://testserver")
    response = client.post("/console/login", data={"key": key, "next": "/console"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console"
    return client


def test_login_sets_a_strict_httponly_cookie_and_pages_need_it(app) -> None:
    anonymous = TestClient(app)
    response = anonymous.get("/console/goals/" + str(uuid.uuid4()), follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=%2Fconsole%2Fgoals")

    key = new_key()
    login = TestClient(app).post("/console/login", data={"key": key}, follow_redirects=False)
    cookie = login.headers["set-cookie"]
    assert cookie.startswith(f"{CONSOLE_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here; over https it is Secure
    https = TestClient(app, base_url="https://testserver").post(
        "/console/login", data={"key": key}, follow_redirects=False)
    assert "Secure" in https.headers["set-cookie"]

    bad = TestClient(app).post("/console/login", data={"key": "tf_nope_nope"})
    assert bad.status_code == 401 and "unknown" in bad.text
    assert CONSOLE_COOKIE not in bad.headers.get("set-cookie", "")


def test_no_open_redirect_and_no_login_from_another_site(app) -> None:
    key = new_key()
    client = TestClient(app)
    for target in ("https://evil.example/", "//evil.example/console", "/v1/goals"):
        response = client.post("/console/login", data={"key": key, "next": target},
                               follow_redirects=False)
        assert response.headers["location"] == "/console"
    foreign = client.post("/console/login", data={"key": key},
                          headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert foreign.status_code == 403
    assert "set-cookie" not in foreign.headers


def test_a_change_made_with_the_cookie_needs_the_console_header(app) -> None:
    key = new_key()
    client = logged_in(app, key)
    goal_id = client.post("/v1/goals", json={"goal": "What is 3 * 3?"},
                          headers={CONSOLE_HEADER: "1"}).json()["id"]
    assert client.get(f"/v1/goals/{goal_id}").status_code == 200  # reads need no header
    refused = client.post(f"/v1/goals/{goal_id}/cancel")
    assert refused.status_code == 403 and CONSOLE_HEADER in refused.text
    assert client.get(f"/v1/goals/{goal_id}").json()["status"] != "cancelled"
    done = client.post(f"/v1/goals/{goal_id}/cancel", headers={CONSOLE_HEADER: "1"})
    assert done.status_code in (200, 409)  # 409 if it had already ended
    # A bearer key needs no console header: the header defends the cookie only.
    bearer = TestClient(app)
    other = bearer.post("/v1/goals", json={"goal": "What is 4 * 4?"},
                        headers={"Authorization": f"Bearer {key}"}).json()["id"]
    assert bearer.post(f"/v1/goals/{other}/cancel",
                       headers={"Authorization": f"Bearer {key}"}).status_code in (200, 409)


def test_pages_carry_a_csp_and_escape_what_clients_wrote(app) -> None:
    key = new_key()
    client = logged_in(app, key)
    goal_id = client.post("/v1/goals", headers={CONSOLE_HEADER: "1"}, json={
        "goal": "<script>alert(1)</script> What is 5 * 5?",
        "metadata": {"<img src=x onerror=alert(1)>": "</td><script>x()</script>"}}).json()["id"]
    for path in ("/console", f"/console/goals/{goal_id}", f"/console/goals/{goal_id}/details",
                 "/console/costs", "/console/login"):
        response = client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert "<script>alert(1)" not in response.text and "<img src=x" not in response.text
        assert not re.search(r"<script>(?!</script>)", response.text), path  # no inline script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(f"/console/goals/{goal_id}").text


def test_another_tenants_goal_and_batch_are_404_pages(app) -> None:
    owner = logged_in(app, new_key())
    goal_id = owner.post("/v1/goals", json={"goal": "What is 6 * 6?"},
                         headers={CONSOLE_HEADER: "1"}).json()["id"]
    batch_id = owner.post("/v1/batches", json=[{"goal": "What is 7 * 7?"}],
                          headers={CONSOLE_HEADER: "1"}).json()["id"]
    stranger = logged_in(app, new_key())
    for path in (f"/console/goals/{goal_id}", f"/console/batches/{batch_id}",
                 f"/console/goals/{goal_id}/details"):
        response = stranger.get(path)
        assert response.status_code == 404 and "no " in response.text
    assert stranger.get(f"/console/goals/{goal_id}/data").status_code == 404
    assert goal_id not in stranger.get("/console").text


def test_the_batch_and_cost_pages_show_progress_and_usd(app) -> None:
    key = new_key()
    client = logged_in(app, key)
    created = client.post("/v1/batches", headers={CONSOLE_HEADER: "1"}, json=[
        {"id": "a", "goal": "What is 8 * 8?"}, {"id": "b", "goal": "What is 9 * 9?"}]).json()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if client.get(created["url"]).json()["done"]:
            break
        time.sleep(0.2)
    page = client.get(f"/console/batches/{created['id']}").text
    assert '<progress id="batch-progress" max="2" value="2">' in page
    assert 'http-equiv="refresh"' not in page  # done: no more refreshing
    assert f"/v1/batches/{created['id']}/results" in page
    listing = client.get(f"/console?batch={created['id']}").text
    assert all(item["goal_id"] in listing for item in created["items"])

    costs = client.get("/console/costs?days=7").text
    assert "sim-planner-1" in costs and "Your tenant" in costs
    admin = logged_in(app, new_key(*auth.DEFAULT_SCOPES, auth.KEYS_ADMIN))
    assert "cost rollups" in admin.get("/console/costs").text
    assert client.get("/console/costs?days=0").status_code == 422
