"""What the fault scenarios share: the plan they run, how they find worker processes,
and :func:`verify`, the invariants every scenario checks afterwards."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import text

from shared import goals
from shared.domain.models import GoalStatus
from shared.persistence.db import dispose_engine, get_engine
from taskforce_cli.fleet import WorkerProcess
from tests.faults.conftest import Cluster, wait_until
from tests.support.tools import read_tally


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
            statuses = goals.goal_statuses(goal_ids).values()
        except Exception:
            dispose_engine()
            return False
        return all(GoalStatus(s).is_final for s in statuses)

    finished = wait_until(all_final, timeout=timeout, interval=0.2)
    recovery_s = time.monotonic() - started
    statuses = goals.goal_statuses(goal_ids)
    assert finished, Counter(statuses.values())
    failures = {g: goals.get_goal(g).error for g, s in statuses.items() if s != "succeeded"}
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
