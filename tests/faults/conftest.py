"""A cluster of its own for each fault scenario: embedded Redis and Postgres that the
test may stop and restart, worker processes it may kill, and beat running the
reconciler every second. Timeouts are seconds, not Celery's defaults."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared import goals
from shared.domain.models import GoalRequest
from shared.persistence.db import migrate
from shared.settings import child_environment, overridden_settings
from taskforce_cli import fleet
from taskforce_cli.embedded import EmbeddedServices

FAULT_SETTINGS = {
    "STEP_LEASE_S": "2",
    "RECONCILE_INTERVAL_S": "1",
    "RECONCILE_STALE_S": "3",
    "PLANNING_STALE_S": "5",
    "DB_RETRY_MAX_S": "60",
    "SIM_LATENCY_SCALE": "0.05",
    "WORKER_CONCURRENCY": "16",
    "TOOL_MODULES": "tests.support.tools",
}


@dataclass
class Cluster:
    """Servers, workers and beat of one fault scenario."""

    directory: Path
    servers: EmbeddedServices
    env: dict[str, str]
    workers: list[fleet.WorkerProcess] = field(default_factory=list)
    beat: subprocess.Popen | None = None

    @property
    def tally_log(self) -> Path:
        return self.directory / "tally.log"

    def start_worker(self, name: str, *, pool: str = "threads",
                     concurrency: int = 16) -> fleet.WorkerProcess:
        worker = fleet.start_worker(name, log_dir=self.directory / "logs", pool=pool,
                                    concurrency=concurrency, env=self.env)
        self.workers.append(worker)  # registered first, so teardown stops it whatever happens
        fleet.wait_for_workers([worker])
        return worker

    def start_beat(self) -> None:
        log = (self.directory / "logs" / "beat.log").open("ab")
        self.beat = subprocess.Popen(
            [sys.executable, "-m", "taskforce_cli.main", "beat", "--loglevel", "INFO"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env=child_environment(self.env),
        )
        log.close()

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")
                         for p in (self.directory / "logs").glob("*.log"))

    def submit(self, plans: list[dict]) -> list[uuid.UUID]:
        return [goals.submit_goal(GoalRequest(goal=f"fault goal {i}", plan=plan))
                for i, plan in enumerate(plans)]


@pytest.fixture()
def cluster() -> Iterator[Cluster]:
    saved = dict(os.environ)
    directory = Path(tempfile.mkdtemp(prefix="taskforce-faults-"))
    directory.chmod(0o755)
    (directory / "logs").mkdir()
    servers = EmbeddedServices(directory / "embedded")
    env = servers.start() | FAULT_SETTINGS | {"DATA_DIR": str(directory)}
    overrides = contextlib.ExitStack()  # this process's settings, until teardown
    overrides.enter_context(overridden_settings(**env))
    env["TASKFORCE_TEST_TALLY_LOG"] = str(directory / "tally.log")  # for the children
    result = Cluster(directory=directory, servers=servers, env=env)
    try:
        migrate()
        result.start_beat()
        yield result
    finally:
        with contextlib.suppress(Exception):
            for worker in result.workers:
                worker.stop(kill=True)
        if result.beat is not None and result.beat.poll() is None:
            result.beat.send_signal(signal.SIGKILL)
            result.beat.wait()
        try:
            servers.stop()
        except Exception:
            servers.postgres.stop(mode="immediate")
            servers.redis.stop(kill=True)
        os.environ.clear()
        os.environ.update(saved)
        overrides.close()


def wait_until(predicate, *, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
