"""Fault injection: real processes stopped and killed by PID, each on a batch of 50 goals.

For every scenario: every goal ends ``succeeded``; every step has exactly one committed
result; and a step's tool ran more than once only when a crash hit it mid-run. The last
is checked against the side-effect log of the ``tally`` tool: each execution logs its
claim attempt, no attempt may execute twice (that would be a redelivery running a step
again), and every execution but the committed one must belong to an attempt that never
committed (its worker died). Set ``TASKFORCE_FAULT_REPORT`` to a path to collect each
scenario's figures as JSON lines (docs/reliability.md's fault matrix).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest
import redis
from fastapi.testclient import TestClient

from shared.persistence.db import dispose_engine
from shared.settings import overridden_settings
from taskforce_cli.fleet import use_environment
from tests.faults.conftest import Cluster, wait_until
from tests.faults.scenarios import (
    alive,
    celery_pid,
    children_of,
    running_owners,
    succeeded_steps,
    tally_plan,
    verify,
)
from tests.support.tools import read_tally

pytestmark = pytest.mark.faults
GOALS = 50


def test_a_worker_child_killed_mid_step(cluster: Cluster) -> None:
    worker = cluster.start_worker("prefork1", pool="prefork", concurrency=6)
    main = celery_pid(worker)
    ids = cluster.submit([tally_plan() for _ in range(GOALS)])
    killed = []
    for _ in range(3):
        def busy_child() -> bool:
            children = children_of(main)
            return any(pid in children and pid not in killed for pid in running_owners(ids))

        assert wait_until(busy_child, timeout=30, interval=0.02)
        children = children_of(main)
        victim = next(p for p in running_owners(ids) if p in children and p not in killed)
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
        time.sleep(1.0)
    report = verify(cluster, ids, "a: SIGKILL a worker's child mid-step", children_killed=3)
    assert report["claims"] > report["steps"]  # the killed attempts were claimed again


def test_a_whole_worker_killed_then_replaced(cluster: Cluster) -> None:
    doomed = cluster.start_worker("doomed")
    cluster.start_worker("survivor")
    ids = cluster.submit([tally_plan() for _ in range(GOALS)])
    doomed_pid = celery_pid(doomed)
    assert wait_until(lambda: doomed_pid in running_owners(ids), timeout=30,
                      interval=0.02)
    in_flight = running_owners(ids).count(doomed_pid)
    doomed.stop(kill=True)
    cluster.start_worker("replacement")
    verify(cluster, ids, "b: SIGKILL a whole worker, start a new one",
           steps_in_flight_on_killed_worker=in_flight)


@pytest.fixture()
def unauthenticated():
    """The gateway without API keys (tenant ``default``, which owns the CLI's goals)."""
    with overridden_settings(AUTH_ENABLED=False):
        yield


def test_redis_restarted_mid_batch(cluster: Cluster, unauthenticated) -> None:
    from api_gateway.app import create_app

    cluster.start_worker("w1")
    cluster.start_worker("w2")
    ids = cluster.submit([tally_plan() for _ in range(GOALS)])
    assert wait_until(lambda: succeeded_steps(ids) >= 40, timeout=60)
    cluster.servers.redis.stop()
    outage = time.monotonic()
    gateway = TestClient(create_app())
    assert gateway.post("/v1/goals", json={"goal": "during the outage"}).status_code == 503
    health = gateway.get("/healthz")
    assert health.status_code == 503 and health.json()["down"] == ["broker"]
    assert gateway.get(f"/v1/goals/{ids[0]}").status_code == 200  # Postgres still answers
    time.sleep(max(0.0, 3.0 - (time.monotonic() - outage)))
    cluster.servers.redis.start()
    outage_s = time.monotonic() - outage
    assert wait_until(
        lambda: gateway.post("/v1/goals", json={"goal": "after"}).status_code == 202,
        timeout=30, interval=0.5)
    verify(cluster, ids, "c: stop and restart Redis", outage_s=round(outage_s, 1))


def test_postgres_restarted_mid_batch(cluster: Cluster, unauthenticated) -> None:
    from api_gateway.app import create_app

    cluster.start_worker("w1")
    cluster.start_worker("w2")
    ids = cluster.submit([tally_plan() for _ in range(GOALS)])
    assert wait_until(lambda: succeeded_steps(ids) >= 40, timeout=60)
    cluster.servers.postgres.stop(mode="immediate")
    outage = time.monotonic()
    gateway = TestClient(create_app())
    assert gateway.get(f"/v1/goals/{ids[0]}").status_code == 503
    assert gateway.post("/v1/goals", json={"goal": "during the outage"}).status_code == 503
    assert gateway.get("/healthz").json()["down"] == ["database"]
    time.sleep(max(0.0, 3.0 - (time.monotonic() - outage)))
    cluster.servers.postgres.start()
    outage_s = time.monotonic() - outage
    dispose_engine()
    assert wait_until(lambda: gateway.get("/healthz").status_code == 200, timeout=30,
                      interval=0.5)
    verify(cluster, ids, "d: stop (immediate) and restart Postgres",
           outage_s=round(outage_s, 1))


def test_a_step_that_outlives_the_visibility_timeout(cluster: Cluster) -> None:
    use_environment({"BROKER_VISIBILITY_TIMEOUT_S": "2"})
    cluster.start_worker("w1", concurrency=32)
    cluster.start_worker("w2", concurrency=32)
    ids = cluster.submit([tally_plan(first_s=8.0) for _ in range(GOALS)])
    report = verify(cluster, ids, "e: a step outlives the visibility timeout (2 s, step 8 s)")
    redelivered = cluster.worker_logs().count("not claimable")
    assert redelivered > 0, "Redis never redelivered a running step's message"
    assert report["re_executions_after_crash"] == 0
    if path := os.environ.get("TASKFORCE_FAULT_REPORT"):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"scenario": "e", "redeliveries_ignored": redelivered})
                         + "\n")


def busy_workers_then(cluster: Cluster, outage, scenario: str) -> None:
    """Three workers, each holding unacknowledged steps when ``outage()`` takes Redis
    away and brings it back; then the same Celery processes must be alive, finish the
    batch, and run new goals submitted after the outage."""
    workers = [cluster.start_worker(f"busy{i}", concurrency=8) for i in range(3)]
    pids = {w.name: celery_pid(w) for w in workers}
    ids = cluster.submit([tally_plan(first_s=1.5, second_s=1.5) for _ in range(GOALS)])
    # Every worker must hold in-flight steps (so unacked messages) at the moment.
    assert wait_until(lambda: set(pids.values()) <= set(running_owners(ids)), timeout=60,
                      interval=0.02), (pids, running_owners(ids))
    in_flight = Counter(running_owners(ids))
    outage_s = outage()
    dead = {name: pid for name, pid in pids.items() if not alive(pid)}
    assert not dead, f"workers died with Redis:\n{cluster.worker_logs()[-3000:]}"
    verify(cluster, ids, scenario, outage_s=round(outage_s, 1),
           steps_in_flight_per_worker=sorted(in_flight[p] for p in pids.values()))
    assert all(alive(pid) for pid in pids.values())
    assert {name: celery_pid(w) for name, w in zip(pids, workers)} == pids

    after = cluster.submit([tally_plan(first_s=0.3, second_s=0.3, third_s=0.3)
                            for _ in range(30)])
    verify(cluster, after, scenario + " (goals submitted after)")
    wanted = {str(g) for g in after}
    ran_new = {e["pid"] for e in read_tally(cluster.tally_log) if e["goal"] in wanted}
    assert set(pids.values()) <= ran_new, (pids, ran_new)
    assert all(alive(pid) for pid in pids.values())


def test_redis_killed_while_every_worker_is_busy(cluster: Cluster) -> None:
    def outage() -> float:
        started = time.monotonic()
        cluster.servers.redis.stop(kill=True)
        time.sleep(2.0)  # an outage of a known length, not a wait for an event
        cluster.servers.redis.start()  # same port, empty
        return time.monotonic() - started

    busy_workers_then(cluster, outage, "f: SIGKILL Redis while every worker is busy")


def test_redis_shut_down_gracefully_while_every_worker_is_busy(cluster: Cluster) -> None:
    def outage() -> float:
        started = time.monotonic()
        client = redis.Redis.from_url(cluster.servers.redis.url)
        try:
            client.shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
        cluster.servers.redis.process.wait(timeout=10)
        time.sleep(2.0)  # an outage of a known length, not a wait for an event
        cluster.servers.redis.start()
        return time.monotonic() - started

    busy_workers_then(cluster, outage, "g: SHUTDOWN NOSAVE Redis while every worker is busy")
