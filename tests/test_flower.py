"""Flower, started with `taskforce flower`, sees the fleet's workers and their tasks."""

from __future__ import annotations

import subprocess
import sys

import httpx

from shared.domain.models import GoalRequest
from shared.settings import child_environment
from taskforce_cli.embedded import free_port
from tests.conftest import REPO
from tests.support.waiting import wait_for


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
        def worker_names() -> set[str]:
            try:
                reply = httpx.get(f"{base}/api/workers", params={"refresh": 1}, timeout=5)
            except httpx.HTTPError:
                return set()  # not listening yet
            return {name.split("@")[0] for name in reply.json()} if reply.is_success else set()

        wanted = {w.name for w in workers}
        wait_for(worker_names, lambda names: names >= wanted, timeout=30, interval=0.3,
                 message=f"Flower listing the workers {sorted(wanted)}")
        # Tasks run after Flower connected show up with their names (events are on).
        run_goal(GoalRequest(goal="What is 7 * 8?"))

        def task_names() -> set[str]:
            tasks = httpx.get(f"{base}/api/tasks", timeout=5).json()
            return {task.get("name") for task in tasks.values()}

        wanted_tasks = {"taskforce.plan_goal", "taskforce.run_step"}
        wait_for(task_names, lambda seen: wanted_tasks <= seen, timeout=15, interval=0.3,
                 message=f"Flower listing tasks named {sorted(wanted_tasks)}")
    finally:
        flower.terminate()
        flower.wait(timeout=10)
        log.close()
