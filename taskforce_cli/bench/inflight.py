"""``taskforce bench inflight``: how many I/O-bound steps one worker process keeps in
flight.

One worker process under the ``gevent`` pool runs ``N`` chains of ``echo`` steps that
each wait 1 s (a simulated remote call: a sleep, no CPU), so ``N`` steps are in flight
at once, for ``N`` = 1,000 and 2,000 in one run; for reference, the ``threads`` pool's
32 threads run 32 such chains. Efficiency is the achieved rate (``echo`` steps committed
per second during a window that opens once every chain has started,
``harness.measure_chains``) over the ideal ``N / 1 s``. Resident memory per in-flight
step is the worker's peak RSS during the run minus its RSS when idle (after a warm-up),
divided by ``N``.

Figures: ``efficiency_at_1000``, ``efficiency_at_2000`` (target >= 0.9 at 1,000),
``rss_kib_per_inflight_step``, and the rates behind them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from shared.persistence.timings import StepTiming
from taskforce_cli.bench import harness
from taskforce_cli.fleet import local_fleet

DELAY_S = 1.0
TARGET = 0.9


def run_chains(count: int, length: int, window_s: float, pid: int,
               say: harness.Say) -> tuple[list[StepTiming], harness.Throughput, int,
                                          harness.CpuUse]:
    """Keep ``count`` chains of 1 s steps in flight (``harness.measure_chains``); their
    timings, throughput, the worker's peak RSS (KiB) and its CPU use over the run."""
    with harness.peak_rss(pid) as peak, harness.cpu_use(pid) as use:
        steps, rate = harness.measure_chains(count, length, DELAY_S, window_s, say)
    return steps, rate, peak[0], use[0]


def cpu_figures(prefix: str, use: harness.CpuUse, steps: list[StepTiming]) -> dict[str, float]:
    """The worker's CPU share, run-queue wait share and CPU per committed step."""
    done = sum(1 for s in steps if s.finished_at) or 1
    return {f"{prefix}_worker_cpu_share": round(use.cpu_s / use.wall_s, 3),
            f"{prefix}_worker_cpu_wait_share": round(use.waiting_s / use.wall_s, 3),
            f"{prefix}_worker_cpu_ms_per_step": round(use.cpu_s * 1000 / done, 2)}


def inflight(*, quick: bool, progress: Console | None,
             plot_dir: Path | None = None) -> dict[str, Any]:
    """In-flight efficiency at 1,000 and 2,000 steps (or 200 and 400 with ``quick``)."""
    say = progress.print if progress else (lambda *_: None)
    sizes = (200, 400) if quick else (1000, 2000)
    # Short chains: planning a goal costs more than running one of its steps, and a
    # worker that cannot keep N in flight never ends a chain within the window anyway.
    length, window_s = (8, 8.0) if quick else (8, 10.0)
    series: dict[str, tuple[list[float], list[int]]] = {}
    rates: dict[int, harness.Throughput] = {}
    rss: dict[int, int] = {}
    with local_fleet(workers=0):
        harness.ensure_no_other_workers()
        with harness.bench_workers(1, pool="threads", concurrency=32, tag="threads") as ws:
            say("threads pool, 32 chains")
            pid = harness.celery_pid(ws[0])
            steps, threads, _, use = run_chains(32, length, window_s, pid, say)
            cpu = cpu_figures("threads_32", use, steps)
            series["threads, 32"] = harness.in_flight_series(steps)
        with harness.bench_workers(1, pool="gevent", concurrency=max(sizes),
                                   tag="gevent") as ws:
            pid = harness.celery_pid(ws[0])
            harness.wait_goals(harness.submit_chains(50, 2, 0.05), timeout_s=120)  # warm-up
            time.sleep(1.0)
            idle = harness.rss_kib(pid)
            for size in sizes:
                say(f"gevent pool, {size} chains of {length} steps of {DELAY_S:g} s")
                steps, rates[size], rss[size], use = run_chains(size, length, window_s,
                                                                 pid, say)
                cpu |= cpu_figures(f"at_{size}", use, steps)
                series[f"gevent, {size}"] = harness.in_flight_series(steps)
                say(f"  {rates[size].steps_per_s:.0f} steps/s "
                    f"(efficiency {rates[size].steps_per_s * DELAY_S / size:.3f})")
    low = sizes[0]
    figures = harness.header("inflight") | {
        "workers": f"1 process, gevent pool x {max(sizes)} (threads pool x 32 for reference)",
        "chain_length": length,
        "step_wait_s": DELAY_S,
        "threads_32_steps_per_s": round(threads.steps_per_s, 1),
        "threads_32_efficiency": round(threads.steps_per_s * DELAY_S / 32, 3),
        "idle_rss_kib": idle,
    }
    for size in sizes:
        figures |= {
            f"steps_per_s_at_{size}": round(rates[size].steps_per_s, 1),
            f"efficiency_at_{size}": round(rates[size].steps_per_s * DELAY_S / size, 3),
            f"window_s_at_{size}": round(rates[size].window_s, 2),
            f"peak_rss_kib_at_{size}": rss[size],
            f"peak_steps_running_at_{size}": max(series[f"gevent, {size}"][1], default=0),
        }
    figures |= cpu
    figures["rss_kib_per_inflight_step"] = round((rss[low] - idle) / low, 1)
    figures["gevent_over_threads_steps_per_s"] = round(
        rates[low].steps_per_s / threads.steps_per_s, 2)
    figures["plot"] = harness.figure(plot_dir, "inflight",
                                     lambda axes: _draw(axes, series, rates), columns=2)
    return figures


def _draw(axes: list[Any], series: dict[str, tuple[list[float], list[int]]],
          rates: dict[int, harness.Throughput]) -> None:
    left, right = axes
    for label, (times, counts) in series.items():
        left.plot(times, counts, label=label)
    left.set_xlabel("seconds from the first step's start")
    left.set_ylabel("steps running (from Postgres)")
    left.set_title("steps in flight, one worker process")
    left.legend(fontsize="small")
    sizes = sorted(rates)
    labels = [str(s) for s in sizes]
    right.bar(labels, [s / DELAY_S for s in sizes], color="lightgrey", label="ideal (N / 1 s)")
    right.bar(labels, [rates[s].steps_per_s for s in sizes], width=0.5,
              label="achieved")
    for i, size in enumerate(sizes):
        right.annotate(f"{rates[size].steps_per_s * DELAY_S / size:.2f}",
                       (i, rates[size].steps_per_s), ha="center", va="bottom")
    right.set_xlabel("steps kept in flight (1 s wait each)")
    right.set_ylabel("steps per second")
    right.set_title("throughput vs ideal (labels: efficiency)")
    right.legend(fontsize="small")
