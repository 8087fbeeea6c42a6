"""``taskforce bench overhead``: what Taskforce adds to raw Celery, measured side by side.

It measures, on one Redis and one set of worker processes:

* ``noop_throughput_ratio``: no-op steps per second through Taskforce (each one claimed,
  committed and dispatched through Postgres) over raw Celery no-op tasks per second.
* ``makespan_over_critical_path``: for a fixed DAG of steps with known durations, the
  measured makespan (first step's start to the goal's end) over the critical path.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from rich.console import Console

from shared import goals, names
from shared.celery_app import app as celery_app
from shared.domain.models import GoalRequest
from shared.settings import get_settings
from taskforce_cli.bench import harness
from taskforce_cli.bench.harness import wait_goals as _wait_goals
from taskforce_cli.fleet import local_fleet

NOOP_COUNTER = f"{names.REDIS_PREFIX}bench:noop"
STEPS_PER_GOAL = 16  # the default fan-out cap: one goal is 16 no-op steps and a synthesis

# Fixed DAG for the makespan measurement: step -> (seconds, dependencies). Its critical
# path is 3 -> 5 -> 6: 0.8 + 1.0 + 0.4 = 2.2 s; step 4 may start at 1.0 s, long before
# the slow branch (3, 5) is done, which a layer-by-layer scheduler would not allow.
MAKESPAN_DAG: dict[int, tuple[float, list[int]]] = {
    1: (1.0, []),
    2: (0.5, []),
    3: (0.8, []),
    4: (0.6, [1]),
    5: (1.0, [2, 3]),
    6: (0.4, [4, 5]),
}


def critical_path_s(dag: dict[int, tuple[float, list[int]]]) -> float:
    """Longest sum of durations along any dependency path (seconds)."""
    finish: dict[int, float] = {}
    for step in sorted(dag):  # ids are topologically ordered in MAKESPAN_DAG
        duration, deps = dag[step]
        finish[step] = duration + max((finish[d] for d in deps), default=0.0)
    return max(finish.values())


def _makespan_plan() -> dict[str, Any]:
    steps: list[dict[str, Any]] = [
        {"id": sid, "kind": "tool", "tool": "echo",
         "args": {"value": sid, "delay_s": seconds}, "depends_on": deps}
        for sid, (seconds, deps) in MAKESPAN_DAG.items()
    ]
    final = max(MAKESPAN_DAG) + 1
    steps.append({"id": final, "kind": "synthesize", "args": {"inputs": [f"${final - 1}"]}})
    return {"steps": steps}


def _noop_plan() -> dict[str, Any]:
    steps: list[dict[str, Any]] = [
        {"id": i, "kind": "tool", "tool": "echo", "args": {"value": i}}
        for i in range(1, STEPS_PER_GOAL + 1)
    ]
    steps.append({"id": STEPS_PER_GOAL + 1, "kind": "synthesize",
                  "args": {"inputs": [f"${i}" for i in range(1, STEPS_PER_GOAL + 1)]}})
    return {"steps": steps}


def raw_noop_rate(count: int) -> float:
    """Raw Celery: publish ``count`` no-op tasks; tasks per second until all ran."""
    client = redis.Redis.from_url(get_settings().redis_url or "")
    client.delete(NOOP_COUNTER)
    started = time.perf_counter()
    for _ in range(count):
        celery_app.send_task(names.NOOP, args=[NOOP_COUNTER])
    deadline = time.monotonic() + 600
    while int(client.get(NOOP_COUNTER) or 0) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    client.close()
    return count / elapsed


def taskforce_noop_rate(goal_count: int) -> float:
    """Taskforce: ``goal_count`` goals of 16 no-op steps and a synthesis each (sim, no latency);
    steps per second from the first submission until every goal succeeded."""
    started = time.perf_counter()
    ids = [goals.submit_goal(GoalRequest(goal="bench no-op", plan=_noop_plan()), check=False)
           for _ in range(goal_count)]
    _wait_goals(ids, timeout_s=600)
    return goal_count * (STEPS_PER_GOAL + 1) / (time.perf_counter() - started)


def makespan_ratio() -> tuple[float, float]:
    """Run the fixed DAG once; return (makespan in seconds, makespan / critical path)."""
    goal_id = goals.submit_goal(GoalRequest(goal="bench makespan", plan=_makespan_plan()))
    _wait_goals([goal_id], timeout_s=120)
    view = goals.get_goal(goal_id)
    first = min(s.started_at for s in view.steps if s.started_at)
    makespan = (view.finished_at - first).total_seconds()
    return makespan, makespan / critical_path_s(MAKESPAN_DAG)


def overhead(*, quick: bool, progress: Console | None,
             plot_dir: Path | None = None) -> dict[str, Any]:
    """Both overhead figures, measured in one run on the same servers and workers; the
    plot ``overhead.png`` (each round's rates side by side, each makespan against the
    critical path) written into ``plot_dir`` (none when None)."""
    say = progress.print if progress else (lambda *_: None)
    goal_count = 10 if quick else 60
    rounds = 3 if quick else 5
    makespan_runs = 2 if quick else 5
    settings = get_settings()
    worker_count = 2
    queues = f"{names.STEPS_QUEUE},{names.BENCH_QUEUE}"
    with local_fleet(workers=0) as fleet:
        from taskforce_cli.fleet import start_worker, wait_for_workers

        log_dir = settings.data_dir.resolve() / "logs"
        fleet.workers.extend(
            start_worker(f"bench{i + 1}-{os.getpid()}", log_dir=log_dir, queues=queues,
                         env={"SIM_LATENCY_SCALE": "0"})  # no simulated LLM latency
            for i in range(worker_count)
        )
        wait_for_workers(fleet.workers)
        say(f"warming up ({worker_count} workers x {settings.worker_concurrency} threads)")
        raw_noop_rate(200)
        taskforce_noop_rate(3)
        raw_rates, tf_rates = [], []
        for index in range(rounds):  # interleaved, so drift on a shared machine hits both
            raw_rates.append(raw_noop_rate(goal_count * (STEPS_PER_GOAL + 1)))
            tf_rates.append(taskforce_noop_rate(goal_count))
            say(f"round {index + 1}/{rounds}: raw {raw_rates[-1]:.0f}/s, "
                f"taskforce {tf_rates[-1]:.0f}/s")
        spans = []
        for index in range(makespan_runs):
            spans.append(makespan_ratio())
            say(f"makespan {index + 1}/{makespan_runs}: {spans[-1][0]:.3f} s")
    raw, ours = statistics.median(raw_rates), statistics.median(tf_rates)
    plot = harness.figure(plot_dir, "overhead",
                          lambda axes: _draw(axes, raw_rates, tf_rates, spans), columns=2)
    return {
        "benchmark": "overhead",
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "workers": f"{worker_count} processes x {settings.worker_concurrency} threads",
        "raw_celery_noop_per_s": round(raw, 1),
        "taskforce_noop_steps_per_s": round(ours, 1),
        "noop_throughput_ratio": round(ours / raw, 3),
        "noop_tasks_per_round": goal_count * (STEPS_PER_GOAL + 1),
        "critical_path_s": critical_path_s(MAKESPAN_DAG),
        "makespan_s": round(statistics.median(s for s, _ in spans), 3),
        "makespan_over_critical_path": round(statistics.median(r for _, r in spans), 4),
        "plot": plot,
    }


def _draw(axes: list[Any], raw_rates: list[float], tf_rates: list[float],
          spans: list[tuple[float, float]]) -> None:
    """Left: raw Celery no-op tasks/s and Taskforce no-op steps/s per interleaved round,
    with their ratio; right: each makespan run against the critical path (seconds)."""
    rounds = list(range(1, len(raw_rates) + 1))
    left, right = axes
    width = 0.38
    left.bar([r - width / 2 for r in rounds], raw_rates, width, label="raw Celery no-op/s")
    left.bar([r + width / 2 for r in rounds], tf_rates, width, label="Taskforce steps/s")
    for r, (a, b) in zip(rounds, zip(raw_rates, tf_rates)):
        left.annotate(f"{b / a:.2f}", (r + width / 2, b), ha="center", va="bottom",
                      fontsize=8)
    left.set_xlabel("round (interleaved)")
    left.set_ylabel("no-op tasks or steps per second")
    left.set_title("no-op throughput (labels: ratio)")
    left.set_xticks(rounds)
    left.legend(fontsize=8)
    runs = list(range(1, len(spans) + 1))
    critical = critical_path_s(MAKESPAN_DAG)
    right.plot(runs, [s for s, _ in spans], "o-", label="makespan")
    right.axhline(critical, color="grey", linestyle="--", label="critical path")
    right.set_ylim(0, max([critical] + [s for s, _ in spans]) * 1.2)
    right.set_xlabel("run")
    right.set_ylabel("seconds")
    right.set_title("makespan against the critical path")
    right.set_xticks(runs)
    right.legend(fontsize=8)

