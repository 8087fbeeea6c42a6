"""Flower, started with `taskforce flower`, sees the fleet's workers and their tasks."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from shared.domain.models import GoalRequest
from shared.settings import child_environment
from taskforce_cli.embedded import free_port
from tests.conftest import REPO


def test_flower_lists_the_workers_and_their_tasks(workers, run_goal, tmp_path) -> None:  # noqa: ANN001
    assert run_goal(GoalRequest(goal="What is 6 * 7?")).status == "succeeded"
    port = free_port()
    log = (tmp_path / "flower.log").open("wb")
    flower = subprocess.Popen(
        [sys.executable, "-m", "taskforce_cli.main", "flower", "--port", str(port)],
        env=child_environment({"FLOWER_UNAUTHENTICATED_API": "true"}), cwd=REPO,
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        names: set[str] = set()
        while time.monotonic() < deadline and len(names) < len(workers):
            try:
                reply = httpx.get(f"{base}/api/workers", params={"refresh": 1}, timeout=5)
                names = {name.split("@")[0] for name in reply.json()} if reply.is_success \
                    else set()
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert names >= {w.name for w in workers}
        # Tasks run after Flower connected show up with their names (events are on).
        run_goal(GoalRequest(goal="What is 7 * 8?"))
        deadline = time.monotonic() + 15
        seen: set[str] = set()
        while time.monotonic() < deadline and "taskforce.run_step" not in seen:
            tasks = httpx.get(f"{base}/api/tasks", timeout=5).json()
            seen = {task.get("name") for task in tasks.values()}
            time.sleep(0.3)
        assert {"taskforce.plan_goal", "taskforce.run_step"} <= seen
    finally:
        flower.terminate()
        flower.wait(timeout=10)
        log.close()
