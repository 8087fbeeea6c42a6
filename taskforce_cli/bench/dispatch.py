"""``taskforce bench dispatch``: time from a step's commit to its dependent's start.

Chains of ``echo`` steps without delay (``harness.chain_plan``) run on one worker
process, first under the ``threads`` pool (32 threads, the default), then under the
``gevent`` pool (1,000 greenlets), a few chains at a time so that the figure is the
protocol's own latency (publish after commit, Redis, Celery's delivery, the claim), not
queueing behind a saturated worker. Each edge's gap is the dependent's ``started_at``
minus its input's ``finished_at``, both stamped by Postgres.

Figures: ``dispatch_p50_ms`` and ``dispatch_p99_ms`` (threads pool, the default) and
the same for gevent, over at least 2,000 edges each. Targets: p50 <= 5 ms, p99 <= 25 ms.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from rich.console import Console

from taskforce_cli.bench import harness
from taskforce_cli.fleet import local_fleet

POOLS = (("threads", 32), ("gevent", 1000))
CHAIN = harness.MAX_CHAIN  # 30 echo steps and a synthesis: 30 edges per goal
TARGET_P50_MS, TARGET_P99_MS = 5.0, 25.0


def measure(*, edges: int, at_once: int, say: harness.Say) -> list[float]:
    """Run waves of ``at_once`` chains until ``edges`` edges were timed; their gaps (ms)."""
    gaps: list[float] = []
    while len(gaps) < edges:
        ids = harness.submit_chains(at_once, CHAIN, 0.0)
        harness.wait_goals(ids, timeout_s=300)
        gaps += harness.dispatch_gaps_ms(harness.timings(ids))
        say(f"  {len(gaps)} edges")
    return gaps


def dispatch(*, quick: bool, progress: Console | None,
             plot_dir: Path | None = None) -> dict[str, Any]:
    """Dispatch latency under each pool, measured in one run on the same servers."""
    say = progress.print if progress else (lambda *_: None)
    edges = 600 if quick else 2000
    at_once = 4
    results: dict[str, list[float]] = {}
    usage: dict[str, harness.CpuUse] = {}
    with local_fleet(workers=0):
        harness.ensure_no_other_workers()
        for pool, concurrency in POOLS:
            with harness.bench_workers(1, pool=pool, concurrency=concurrency,
                                       tag=pool) as workers:
                say(f"{pool} pool ({concurrency}): warming up")
                harness.wait_goals(harness.submit_chains(at_once, 5, 0.0), timeout_s=120)
                with harness.cpu_use(harness.celery_pid(workers[0])) as use:
                    results[pool] = measure(edges=edges, at_once=at_once, say=say)
                usage[pool] = use[0]
    figures = harness.header("dispatch") | {
        "workers": "1 process; threads pool x 32, then gevent pool x 1000",
        "chains_at_once": at_once,
    }
    for pool, _ in POOLS:
        prefix = "" if pool == "threads" else f"{pool}_"
        gaps = results[pool]
        figures |= {
            f"{prefix}dispatch_edges": len(gaps),
            f"{prefix}dispatch_p50_ms": round(statistics.median(gaps), 2),
            f"{prefix}dispatch_p99_ms": round(harness.percentile(gaps, 0.99), 2),
            # Per step (one edge each), what the worker got from the CPU scheduler.
            f"{prefix}worker_cpu_ms_per_step": round(usage[pool].cpu_s * 1000 / len(gaps), 2),
            f"{prefix}worker_cpu_wait_ms_per_step": round(
                usage[pool].waiting_s * 1000 / len(gaps), 2),
        }
    figures["gevent_over_threads_p50"] = round(
        figures["gevent_dispatch_p50_ms"] / figures["dispatch_p50_ms"], 3)
    figures["plot"] = harness.figure(plot_dir, "dispatch", lambda axes: _draw(axes, results))
    return figures


def _draw(axes: list[Any], results: dict[str, list[float]]) -> None:
    ax = axes[0]
    for pool, gaps in results.items():
        ordered = sorted(gaps)
        ax.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))],
                label=f"{pool} (p50 {statistics.median(gaps):.1f} ms)")
    ax.axvline(TARGET_P50_MS, color="grey", linestyle=":", label="p50 target 5 ms")
    ax.axvline(TARGET_P99_MS, color="grey", linestyle="--", label="p99 target 25 ms")
    ax.set_xscale("log")
    ax.set_xlabel("commit of a step -> start of its dependent (ms, log)")
    ax.set_ylabel("fraction of edges")
    ax.set_title("dispatch latency, one worker process")
    ax.legend(loc="lower right", fontsize="small")
