"""Flower, started with `taskforce flower`, sees the fleet's workers and their tasks,
behind HTTP basic auth; it refuses to start exposed without auth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shared.domain.models import GoalRequest
from shared.settings import child_environment
from taskforce_cli.embedded import free_port
from tests.conftest import REPO
from tests.support.waiting import wait_for

USER, PASSWORD = "ops", "flower-test-password-7c1e"


def _env_without_auth() -> dict[str, str]:
    return {k: v for k, v in child_environment().items()
            if k not in ("FLOWER_BASIC_AUTH", "FLOWER_UNAUTHENTICATED_API")}


def test_flower_lists_the_workers_and_their_tasks_to_authenticated_users(
        workers, run_goal, tmp_path: Path) -> None:  # noqa: ANN001
    assert run_goal(GoalRequest(goal="What is 6 * 7?")).status == "succeeded"
    port = free_port()
    log = (tmp_path / "flower.log").open("wb")
    flower = subprocess.Popen(
        [sys.executable, "-m", "taskforce_cli.main", "flower", "--port", str(port)],
        env={**_env_without_auth(), "FLOWER_BASIC_AUTH": f"{USER}:{PASSWORD}"}, cwd=REPO,
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    auth = (USER, PASSWORD)
    try:
        def worker_names() -> set[str]:
            try:
                reply = httpx.get(f"{base}/api/workers", params={"refresh": 1}, timeout=5,
                                  auth=auth)
            except httpx.HTTPError:
                return set()  # not listening yet
            return {name.split("@")[0] for name in reply.json()} if reply.is_success else set()

        wanted = {w.name for w in workers}
        wait_for(worker_names, lambda names: names >= wanted, timeout=60, interval=0.3,
                 message=f"Flower listing the workers {sorted(wanted)} (its log: {log.name})")
        # The password is not on Flower's command line (visible to every local user).
        cmdline = Path(f"/proc/{flower.pid}/cmdline").read_bytes()
        assert b"flower" in cmdline and PASSWORD.encode() not in cmdline
        # Without credentials, or with wrong ones, nothing is shown.
        for path in ("/api/workers", "/api/tasks", "/"):
            assert httpx.get(f"{base}{path}", timeout=5).status_code == 401
        assert httpx.get(f"{base}/api/workers", timeout=5,
                         auth=(USER, "wrong")).status_code == 401
        # Tasks run after Flower connected show up with their names (events are on).
        run_goal(GoalRequest(goal="What is 7 * 8?"))

        def task_names() -> set[str]:
            tasks = httpx.get(f"{base}/api/tasks", timeout=5, auth=auth).json()
            return {task.get("name") for task in tasks.values()}

        wanted_tasks = {"taskforce.plan_goal", "taskforce.run_step"}
        wait_for(task_names, lambda seen: wanted_tasks <= seen, timeout=15, interval=0.3,
                 message=f"Flower listing tasks named {sorted(wanted_tasks)}")
    finally:
        flower.terminate()
        flower.wait(timeout=10)
        log.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--address", "0.0.0.0", "--unauthenticated"], "loopback address only"),
        (["--address", "0.0.0.0"], "needs authentication"),
        ([], "needs authentication"),
    ],
)
def test_flower_refuses_to_start_without_auth(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "taskforce_cli.main", "flower", "--port", "1", *args],
        env={**_env_without_auth(), "COLUMNS": "200"}, cwd=REPO, capture_output=True,
        text=True, timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr


def test_malformed_credentials_are_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "taskforce_cli.main", "flower", "--port", "1"],
        env={**_env_without_auth(), "FLOWER_BASIC_AUTH": "just-a-user", "COLUMNS": "200"},
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "user:password" in done.stderr
