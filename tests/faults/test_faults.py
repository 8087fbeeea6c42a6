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
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import text

from shared import service
from shared.cli import fleet
from shared.cli.fleet import WorkerProcess, use_environment
from shared.domain.models import GoalStatus
from shared.embedded import free_port
from shared.persistence.db import dispose_engine, get_engine
from tests.faults.conftest import Cluster, wait_until
from tests.support.tools import read_tally

pytestmark = pytest.mark.faults
GOALS = 50
CHAOS_ROUNDS = 6  # worker kills in the chaos scenario, one every few seconds


def tally_plan(first_s: float = 0.6, second_s: float = 0.4, third_s: float = 0.4) -> dict:
    """Two parallel tally steps, a third that needs both, then the synthesis."""
    return {"steps": [
        {"id": 1, "kind": "tool", "tool": "tally", "args": {"value": 1, "delay_s": first_s}},
        {"id": 2, "kind": "tool", "tool": "tally", "args": {"value": 2, "delay_s": second_s}},
        {"id": 3, "kind": "tool", "tool": "tally",
         "args": {"value": ["$1.value", "$2.value"], "delay_s": third_s}},
        {"id": 4, "kind": "synthesize", "args": {"inputs": ["$3"]}},
    ]}


def running_owners(goal_ids: list[uuid.UUID]) -> list[int]:
    """PIDs holding leases on running steps of these goals."""
    with get_engine().connect() as connection:
        owners = connection.execute(
            text("SELECT lease_owner FROM steps WHERE goal_id = ANY(:ids) "
                 "AND status = 'running'"), {"ids": goal_ids}).scalars().all()
    return [int(owner.split("/")[1]) for owner in owners]


def succeeded_steps(goal_ids: list[uuid.UUID]) -> int:
    with get_engine().connect() as connection:
        return connection.execute(
            text("SELECT count(*) FROM steps WHERE goal_id = ANY(:ids) "
                 "AND status = 'succeeded'"), {"ids": goal_ids}).scalar()


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def celery_pid(worker: WorkerProcess) -> int:
    """The PID of the Celery worker process behind ``taskforce worker``: its only child
    when the command supervises one, else the command's own process."""
    children = children_of(worker.process.pid)
    return next(iter(children)) if len(children) == 1 else worker.process.pid


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped, is not alive)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def verify(cluster: Cluster, goal_ids: list[uuid.UUID], scenario: str,
           timeout: float = 150.0, **figures: object) -> dict:
    """Check the invariants of the module docstring; return the scenario's figures."""
    started = time.monotonic()

    def all_final() -> bool:
        try:
            statuses = service.goal_statuses(goal_ids).values()
        except Exception:
            dispose_engine()
            return False
        return all(GoalStatus(s).is_final for s in statuses)

    finished = wait_until(all_final, timeout=timeout, interval=0.2)
    recovery_s = time.monotonic() - started
    statuses = service.goal_statuses(goal_ids)
    assert finished, Counter(statuses.values())
    failures = {g: service.get_goal(g).error for g, s in statuses.items() if s != "succeeded"}
    assert not failures

    with get_engine().connect() as connection:
        steps = connection.execute(
            text("SELECT goal_id, step_id, kind, status, result IS NOT NULL AS has_result "
                 "FROM steps WHERE goal_id = ANY(:ids)"), {"ids": goal_ids}).all()
        runs = connection.execute(
            text("SELECT goal_id, step_id, attempt, outcome FROM step_runs "
                 "WHERE goal_id = ANY(:ids)"), {"ids": goal_ids}).all()
    assert len(steps) == len(goal_ids) * 4
    assert all(s.status == "succeeded" and s.has_result for s in steps)
    committed = Counter((r.goal_id, r.step_id) for r in runs if r.outcome == "succeeded")
    assert all(committed[(s.goal_id, s.step_id)] == 1 for s in steps), "a step committed twice"

    outcome = {(r.goal_id, r.step_id, r.attempt): r.outcome for r in runs}
    wanted = {str(g) for g in goal_ids}
    executions = Counter((uuid.UUID(e["goal"]), e["step"], e["attempt"])
                         for e in read_tally(cluster.tally_log) if e["goal"] in wanted)
    assert max(executions.values()) == 1, "one claim attempt ran its tool twice"
    reruns = [key for key in executions if outcome.get(key) != "succeeded"]
    for key in reruns:
        assert outcome.get(key) in (None, "lease_lost"), (key, outcome.get(key))
    for s in steps:
        if s.kind == "tool":
            assert sum(1 for k in executions if k[:2] == (s.goal_id, s.step_id)) >= 1
    report = {
        "scenario": scenario,
        "goals": len(goal_ids),
        "succeeded": sum(1 for s in statuses.values() if s == "succeeded"),
        "steps": len(steps),
        "tool_executions": len(executions),
        "re_executions_after_crash": len(reruns),
        "claims": len(runs),
        "recovery_wait_s": round(recovery_s, 1),
        **figures,
    }
    if path := os.environ.get("TASKFORCE_FAULT_REPORT"):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(report) + "\n")
    return report


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


def test_redis_restarted_mid_batch(cluster: Cluster) -> None:
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


def test_postgres_restarted_mid_batch(cluster: Cluster) -> None:
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
        [sys.executable, "-m", "shared.cli.main", "gateway", "--host", "127.0.0.1",
         "--port", str(port), "--no-migrate"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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
    goals = 100
    gateway, base_url = start_gateway(cluster)
    try:
        workers = [cluster.start_worker(f"chaos{i}", concurrency=8) for i in range(3)]
        plan = tally_plan(first_s=1.2, second_s=1.2, third_s=0.6)
        with httpx.Client(base_url=base_url, timeout=30) as client:
            replies = [client.post("/v1/goals", json={"goal": f"chaos goal {i}", "plan": plan})
                       for i in range(goals)]
        assert [r.status_code for r in replies] == [202] * goals
        ids = [uuid.UUID(r.json()["id"]) for r in replies]

        def all_final() -> bool:
            try:
                return all(GoalStatus(s).is_final
                           for s in service.goal_statuses(ids).values())
            except Exception:
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
                        pool="threads", concurrency=8))
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
