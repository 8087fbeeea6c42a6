"""The web console in a real headless Chromium (Playwright driving Debian's
``chromium``), against the gateway served over HTTP and real workers: log in with an API
key, filter the goal list, watch a running goal's DAG change colour live, cancel a goal,
see a lost lease and its retry marked on the timeline.

With ``TASKFORCE_SCREENSHOTS=1`` the tests write ``docs/console-list.png`` and
``docs/console-goal.png``; otherwise their screenshots go to a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared import auth
from shared.settings import overridden_settings
from tests.conftest import REPO
from tests.support.gateway_server import serving

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 60_000


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium: installed here when missing and this is root with apt-get,
    else the browser tests are skipped, saying why."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("browser tests need /usr/bin/chromium (apt-get install chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"installing chromium failed: {done.stderr[-500:]}")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium):
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium),
                                              args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def gateway(workers) -> Iterator[str]:
    from api_gateway.app import create_app

    with overridden_settings(AUTH_ENABLED=True, EVENTS_POLL_INTERVAL_S=0.2,
                             FLOWER_URL="http://127.0.0.1:5555"), \
            serving(create_app()) as url:
        yield url


@pytest.fixture()
def key() -> str:
    return auth.create_key(tenant=f"console-{uuid.uuid4().hex[:8]}",
                           scopes=(*auth.DEFAULT_SCOPES, auth.PLANS_SUBMIT)).key


@pytest.fixture()
def page(browser, gateway, key):
    """A logged-in page; fails the test on any script error or CSP violation."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.goto(f"{gateway}/console")
    assert "/console/login" in tab.url  # no key yet: the login page
    tab.fill("#key", key)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{gateway}/console")
    yield tab
    context.close()
    assert not problems, problems


def screenshot_path(name: str, tmp_path: Path) -> Path:
    if os.environ.get("TASKFORCE_SCREENSHOTS") == "1":
        return REPO / "docs" / name
    return tmp_path / name


def submit(gateway: str, key: str, body: dict) -> str:
    # A long timeout: the first submission of a process imports the vendors' SDKs.
    response = httpx.post(f"{gateway}/v1/goals", json=body, timeout=60,
                          headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def tally(step_id: int, delay_s: float, *after: int) -> dict:
    return {"id": step_id, "kind": "tool", "tool": "tally", "depends_on": list(after),
            "args": {"value": step_id, "delay_s": delay_s},
            "description": f"wait {delay_s} s"}


def wait(step_id: int, delay_s: float, *after: int) -> dict:
    """An ``echo`` step that waits ``delay_s`` seconds and stops early once its goal is
    cancelled (so a cancelled goal frees the workers' threads for the next test)."""
    return {"id": step_id, "kind": "tool", "tool": "echo", "depends_on": list(after),
            "args": {"value": step_id, "delay_s": delay_s},
            "description": f"wait {delay_s} s"}


def fan_plan(delay_s: float) -> dict:
    """Two lookups side by side, one step combining them, then the synthesis (each wait
    at most ``TOOL_ECHO_MAX_DELAY_S``, 30 s)."""
    return {"steps": [
        wait(1, delay_s), wait(2, delay_s * 1.5), wait(3, delay_s, 1, 2),
        {"id": 4, "kind": "synthesize", "depends_on": [3],
         "args": {"instruction": "report the values", "inputs": ["$1", "$2", "$3"]}},
    ]}


def node(step: int) -> str:
    """A script expression: the DAG's node of ``step`` (an empty collection if none)."""
    return f"window.taskforceConsole.cy.getElementById('s{step}')"


def wait_node(page, step: int, status: str) -> None:
    """Wait until the drawn DAG shows ``step`` in ``status``."""
    page.wait_for_function(
        "([step, status]) => { const c = window.taskforceConsole; "
        "if (!c || !c.cy) return false; const n = c.cy.getElementById('s' + step); "
        "return n.length > 0 && n.data('status') === status; }", arg=[step, status])


def node_status(page, step: int) -> str | None:
    return page.evaluate(f"() => {node(step)}.data('status')")


def node_colour(page, step: int) -> str:
    return page.evaluate(f"() => {node(step)}.style('background-color')")


def wait_goal_status(page, status: str) -> None:
    page.wait_for_function(
        "s => document.getElementById('goal-status').textContent === s", arg=status)


def test_the_goal_page_follows_a_running_goal_live(page, gateway, key, tmp_path) -> None:
    goal_id = submit(gateway, key, {"goal": "Fan out and combine [console demo]",
                                    "metadata": {"demo": "live"}, "plan": fan_plan(2.0)})
    page.goto(f"{gateway}/console/goals/{goal_id}")
    wait_node(page, 1, "running")
    running = node_colour(page, 1)
    assert node_status(page, 3) in ("pending", "queued")
    # No reload: the event stream moves step 1 on and the node changes colour.
    wait_node(page, 1, "succeeded")
    assert node_colour(page, 1) != running
    wait_node(page, 3, "running")
    page.wait_for_function("() => document.querySelectorAll('.tl-bar').length >= 3")
    page.screenshot(path=str(screenshot_path("console-goal.png", tmp_path)), full_page=True)
    wait_goal_status(page, "succeeded")
    page.wait_for_selector("#answer")
    assert page.locator(".tl-bar").count() >= 4  # one bar per attempt of each step
    assert page.locator("#steps tbody tr").count() == 4
    assert page.locator("#llm-calls tbody tr").count() >= 1
    assert "[simulated]" in page.inner_text("#answer")
    flower = page.get_attribute("#step-1 a", "href")
    assert flower == f"http://127.0.0.1:5555/task/{goal_id}.step.1"
    assert page.locator("#trace-link").count() == 0  # no trace URL configured
    assert page.is_disabled("#cancel")
    assert page.inner_text("#live") == "ended"


def test_the_list_filters_by_status_and_metadata(page, gateway, key, tmp_path) -> None:
    tag = uuid.uuid4().hex[:6]
    blue = [submit(gateway, key, {"goal": f"What is {n} * 7?",
                                  "metadata": {"team": f"blue-{tag}"}}) for n in range(2)]
    red = submit(gateway, key, {"goal": "Which is longer, the Nile or the Amazon?",
                                "metadata": {"team": f"red-{tag}"}})
    page.goto(f"{gateway}/console")
    for goal_id in (*blue, red):
        page.wait_for_selector(f"tr[data-goal-id='{goal_id}']")
    page.fill("input[name=metadata]", f"team:blue-{tag}")
    page.click("#apply-filters")
    page.wait_for_url("**metadata=team*")
    rows = page.locator("#goal-table tbody tr[data-goal-id]")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.goalId)")) == sorted(blue)
    page.check("input[name=status][value=cancelled]")
    page.click("#apply-filters")
    page.wait_for_url("**status=cancelled*")
    assert page.inner_text("#goal-table tbody") == "No goal matches."
    # A batch and a cancelled goal among them: the list links each goal to its batch.
    batch = httpx.post(f"{gateway}/v1/batches", timeout=60, headers={
        "Authorization": f"Bearer {key}"}, json=[
        {"id": "b1", "goal": "Were Scott Derrickson and Ed Wood of the same nationality?",
         "metadata": {"team": f"green-{tag}"}},
        {"id": "b2", "goal": "Which is taller, the Eiffel Tower or the Empire State Building?",
         "metadata": {"team": f"green-{tag}"}}]).json()
    stopped = submit(gateway, key, {"goal": "A long wait", "plan": fan_plan(20.0),
                                    "metadata": {"team": f"red-{tag}"}})
    httpx.post(f"{gateway}/v1/goals/{stopped}/cancel", timeout=60,
               headers={"Authorization": f"Bearer {key}"})
    page.goto(f"{gateway}/console")
    row = page.locator(f"tr[data-goal-id='{batch['items'][0]['goal_id']}']")
    assert row.locator(f"a[href='/console/batches/{batch['id']}']").count() == 1
    assert page.inner_text(f"tr[data-goal-id='{stopped}'] .status") == "cancelled"
    page.screenshot(path=str(screenshot_path("console-list.png", tmp_path)), full_page=False)


def test_cancel_from_the_goal_page(page, gateway, key) -> None:
    goal_id = submit(gateway, key, {"goal": "A long wait", "plan": fan_plan(15.0)})
    page.goto(f"{gateway}/console/goals/{goal_id}")
    wait_node(page, 1, "running")
    page.click("#cancel")
    wait_goal_status(page, "cancelled")
    assert page.inner_text("#cancel-result") == "cancelled"
    wait_node(page, 3, "skipped")
    state = httpx.get(f"{gateway}/v1/goals/{goal_id}", timeout=30,
                      headers={"Authorization": f"Bearer {key}"}).json()
    assert state["status"] == "cancelled"


def test_the_timeline_marks_a_lost_lease_and_the_retry(page, gateway, key, db) -> None:
    """A real takeover: step 1's lease is made to expire while its tool runs and its
    message is delivered again, so a second attempt takes the step over and the first
    one's commit is refused (``lease_lost``)."""
    from sqlalchemy import text

    from shared import names
    from shared.celery_app import send
    from tests.support.waiting import wait_until

    goal_id = submit(gateway, key, {"goal": "Taken over", "plan": {"steps": [
        tally(1, 4.0), {"id": 2, "kind": "synthesize", "depends_on": [1],
                        "args": {"instruction": "report", "inputs": ["$1"]}}]}})

    def running() -> bool:
        with db.connect() as connection:
            return connection.execute(text(
                "SELECT status = 'running' FROM steps WHERE goal_id = :g AND step_id = 1"),
                {"g": goal_id}).scalar() is True

    wait_until(running, message=f"step 1 of {goal_id} running", timeout=60)
    with db.begin() as connection:
        connection.execute(text("UPDATE steps SET lease_expires_at = now() - interval "
                                "'1 second' WHERE goal_id = :g AND step_id = 1"), {"g": goal_id})
    send(names.RUN_STEP, goal_id, 1)
    page.goto(f"{gateway}/console/goals/{goal_id}")
    wait_goal_status(page, "succeeded")
    page.wait_for_selector(".tl-bar.lease_lost")
    bars = page.locator(".tl-row").first.locator(".tl-bar")
    assert bars.count() == 2
    assert bars.evaluate_all("bs => bs.map(b => b.dataset.outcome)") == [
        "lease_lost", "succeeded"]
    assert "retry" in (bars.nth(1).get_attribute("class") or "")
    assert bars.nth(1).inner_text().startswith("↻")
    assert page.inner_text("#step-1 td:nth-child(4)").startswith("2")  # attempts
    assert "lease_lost" in page.inner_text("#step-1")
