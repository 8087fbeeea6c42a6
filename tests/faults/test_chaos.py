"""Continuous chaos through the real gateway: a batch of goals over HTTP while workers
are killed every few seconds and replaced, Redis is restarted empty once and Postgres is
restarted once. Every goal succeeds, no step commits twice, and the gateway answers 503,
never another 5xx, during the outages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import httpx
import pytest
from sqlalchemy.exc import InterfaceError, OperationalError

from shared import goals
from shared.domain.models import GoalStatus
from shared.persistence.db import dispose_engine
from shared.settings import child_environment
from taskforce_cli import fleet
from taskforce_cli.embedded import free_port
from tests.faults.conftest import Cluster, wait_until
from tests.faults.scenarios import celery_pid, tally_plan, verify

pytestmark = pytest.mark.faults
CHAOS_ROUNDS = 6  # worker kills in the chaos scenario, one every few seconds


class GatewayProbe:
    """Polls a gateway's GET /v1/goals/{id} and /healthz from a thread, recording every
    answer's status code ("error" when it did not answer within ``timeout`` seconds)."""

    def __init__(self, base_url: str, goal_ids: list[uuid.UUID], timeout: float = 10.0):
        self.codes: Counter = Counter()
        self._stop = threading.Event()
        self._client = httpx.Client(base_url=base_url, timeout=timeout)
        self._ids = goal_ids
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        index = 0
        while not self._stop.is_set():
            for path in (f"/v1/goals/{self._ids[index % len(self._ids)]}", "/healthz"):
                try:
                    code = self._client.get(path).status_code
                except httpx.HTTPError:
                    code = "error"
                self.codes[(path.split("/")[1], code)] += 1
            index += 1
            self._stop.wait(0.1)

    def __enter__(self) -> GatewayProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._client.close()


def start_gateway(cluster: Cluster) -> tuple[subprocess.Popen, str]:
    """``taskforce gateway`` on a free loopback port; returns it and its base URL once
    /healthz answers 200."""
    port = free_port()
    log = (cluster.directory / "logs" / "gateway.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "taskforce_cli.main", "gateway", "--host", "127.0.0.1",
         "--port", str(port), "--no-migrate"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        # The cluster's servers; no API keys and no quotas: the batch is one tenant's.
        env=child_environment(cluster.env | {"AUTH_ENABLED": "false",
                                             "TENANT_QUOTAS_ENABLED": "false"}))
    log.close()
    base_url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_until(healthy, timeout=60, interval=0.2), "the gateway did not start"
    return process, base_url


def test_continuous_chaos_through_the_gateway(cluster: Cluster) -> None:
    """Goals posted over HTTP while workers are SIGKILLed every few seconds (alternately
    the Celery process, which its ``taskforce worker`` restarts, and the whole worker,
    replaced by a new one), Redis is restarted empty once and Postgres restarted
    (immediate) once. The gateway must answer 503, never another 5xx, meanwhile."""
    goal_count = 100
    gateway, base_url = start_gateway(cluster)
    try:
        workers = [cluster.start_worker(f"chaos{i}", concurrency=8) for i in range(3)]
        plan = tally_plan(first_s=1.2, second_s=1.2, third_s=0.6)
        with httpx.Client(base_url=base_url, timeout=30) as client:
            replies = [client.post("/v1/goals", json={"goal": f"chaos goal {i}", "plan": plan})
                       for i in range(goal_count)]
        assert [r.status_code for r in replies] == [202] * goal_count
        ids = [uuid.UUID(r.json()["id"]) for r in replies]

        def all_final() -> bool:
            try:
                return all(GoalStatus(s).is_final
                           for s in goals.goal_statuses(ids).values())
            except (OperationalError, InterfaceError):  # Postgres is being restarted
                dispose_engine()
                return False

        kills = {"celery process": 0, "whole worker": 0}
        outages: dict[str, float] = {}
        with GatewayProbe(base_url, ids) as probe:
            for round_ in range(CHAOS_ROUNDS):
                if round_ > 2 and all_final():
                    break
                if round_ in (0, 2):  # the outages must hit the batch, not follow it
                    assert not all_final(), "the batch ended before the outages"
                victim = workers.pop(0)  # round robin: the longest-serving worker
                if round_ % 2 == 0:
                    # Its supervisor restarts the Celery process after a backoff.
                    assert wait_until(lambda: celery_pid(victim) != victim.process.pid,
                                      timeout=60)
                    os.kill(celery_pid(victim), signal.SIGKILL)
                    workers.append(victim)
                    kills["celery process"] += 1
                else:
                    victim.stop(kill=True)
                    # Started, not waited for: the kills go on while it boots.
                    workers.append(fleet.start_worker(
                        f"chaos-r{round_}", log_dir=cluster.directory / "logs",
                        pool="threads", concurrency=8, env=cluster.env))
                    cluster.workers.append(workers[-1])
                    kills["whole worker"] += 1
                if round_ == 0:
                    outage = time.monotonic()
                    cluster.servers.redis.stop(kill=True)
                    time.sleep(2.0)  # an outage of a known length
                    cluster.servers.redis.start()
                    outages["redis"] = time.monotonic() - outage
                if round_ == 2:
                    outage = time.monotonic()
                    cluster.servers.postgres.stop(mode="immediate")
                    time.sleep(2.0)  # an outage of a known length
                    cluster.servers.postgres.start()
                    outages["postgres"] = time.monotonic() - outage
                    dispose_engine()
                time.sleep(2.0)  # the chaos period: a kill every few seconds
            report = verify(cluster, ids, "h: continuous chaos through the gateway",
                            kills=kills,
                            outages_s={k: round(v, 1) for k, v in outages.items()})
        codes = dict(probe.codes)
        assert not [c for c in codes if c[1] == "error" or (c[1] >= 500 and c[1] != 503)], codes
        assert codes.get(("healthz", 503)), codes  # the gateway saw the outages
        assert gateway.poll() is None, "the gateway exited"
        if path := os.environ.get("TASKFORCE_FAULT_REPORT"):
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"scenario": "h", "goals_posted": len(ids),
                                         "succeeded": report["succeeded"],
                                         "gateway_codes": {f"{p} {c}": n for (p, c), n
                                                           in codes.items()}}) + "\n")
    finally:
        gateway.send_signal(signal.SIGKILL)
        gateway.wait()
