"""Scale-down as an orchestrator does it: a batch runs on a pool of workers, the pool is
told to stop with SIGTERM (what Kubernetes sends to a pod's first process, here the
``taskforce worker`` supervisor), and a new pool takes over.

Each stopping worker gets WORKER_SOFT_SHUTDOWN_TIMEOUT_S: steps shorter than it finish
and commit, longer ones are handed back (prefork: Celery's soft shutdown cancels them;
threads: the supervisor kills the Celery child, their leases lapse and the reconciler
dispatches them again; see taskforce_cli/supervise.py). The checks are
:func:`tests.faults.scenarios.verify`'s: every goal succeeds, every step is committed
exactly once, and no claim attempt runs its tool twice.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid

import pytest
from sqlalchemy import text

from shared import heartbeat
from shared.persistence.db import get_engine
from shared.settings import get_settings
from taskforce_cli.fleet import WorkerProcess
from tests.faults.conftest import Cluster, wait_until
from tests.faults.scenarios import celery_pid, children_of, running_owners, tally_plan, verify

pytestmark = pytest.mark.faults
GOALS = 30
SOFT_SHUTDOWN_S = 2.0  # shorter than the slow steps below, longer than the quick ones
GRACE_S = 30.0  # what the test allows a stopping worker before it would SIGKILL it


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_workers_stopped_with_sigterm_hand_back_or_finish_their_steps(
        cluster: Cluster, pool: str) -> None:
    cluster.env["WORKER_SOFT_SHUTDOWN_TIMEOUT_S"] = str(SOFT_SHUTDOWN_S)
    old = [cluster.start_worker(f"old{i}", pool=pool, concurrency=4) for i in range(2)]
    # Step 1 runs 8 s (outlasts the soft shutdown: handed back), steps 2 and 3 run 0.5 s
    # (finish within it).
    ids = cluster.submit([tally_plan(first_s=8.0, second_s=0.5, third_s=0.5)
                          for _ in range(GOALS)])
    owners = {worker.name: _pids(worker) for worker in old}

    def both_busy_with_a_slow_step() -> bool:
        slow = set(_running_owners_of_step(ids, 1))
        return all(pids & slow for pids in owners.values())

    assert wait_until(both_busy_with_a_slow_step, timeout=60, interval=0.02), (
        "both old workers should be running a slow step")
    in_flight = len([p for p in running_owners(ids) if p in set().union(*owners.values())])

    stopped_at = time.monotonic()
    exited_at: list[float] = []
    for worker in old:
        worker.process.send_signal(signal.SIGTERM)

    def watch() -> None:
        for worker in old:
            worker.process.wait()
            exited_at.append(time.monotonic())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    new = [cluster.start_worker(f"new{i}", pool=pool, concurrency=4) for i in range(2)]
    assert wait_until(lambda: all(w.process.poll() is not None for w in old),
                      timeout=GRACE_S, interval=0.1), "a stopping worker outlived its grace"
    watcher.join(timeout=5)
    stop_s = max(exited_at) - stopped_at  # SIGTERM to the last old worker's exit
    assert stop_s < SOFT_SHUTDOWN_S + 20  # bounded by the soft shutdown, not the steps
    logs = "\n".join(worker.log_path.read_text(errors="replace") for worker in old)
    if pool == "prefork":  # SIGTERM reached Celery as its soft shutdown
        assert "Soft Shutdown" in logs
    else:  # a warm shutdown, bounded by the supervisor
        assert "Warm shutdown" in logs and "after the stop signal: killing it" in logs
    assert "Unrecoverable error" not in logs
    assert "restarting in" not in logs  # the supervisor did not start Celery again

    report = verify(cluster, ids, f"scale-down ({pool}): SIGTERM to the old workers, "
                    "new ones started",
                    steps_in_flight_at_sigterm=in_flight, old_pool_stop_s=round(stop_s, 1))
    assert report["succeeded"] == GOALS
    # The new pool's workers are alive by their liveness probe's measure.
    assert all(w.process.poll() is None for w in new)
    age = heartbeat.age_s(get_settings().worker_heartbeat_path)
    assert age is not None and age < 30


def _pids(worker: WorkerProcess) -> set[int]:
    """The PIDs that may own a lease of this worker: its Celery process and, for the
    prefork pool, that process's children."""
    main = celery_pid(worker)
    return {main} | children_of(main)


def _running_owners_of_step(goal_ids: list[uuid.UUID], step_id: int) -> list[int]:
    """PIDs holding leases on step ``step_id`` of these goals while it runs."""
    with get_engine().connect() as connection:
        owners = connection.execute(
            text("SELECT lease_owner FROM steps WHERE goal_id = ANY(:ids) "
                 "AND step_id = :step AND status = 'running'"),
            {"ids": goal_ids, "step": step_id}).scalars().all()
    return [int(owner.split("/")[1]) for owner in owners]
