"""``taskforce bench scale``: I/O-bound steps through 1, 2 and 4 worker processes.

Each process runs the ``gevent`` pool with ``--concurrency M``, and ``M`` chains per
process of ``echo`` steps that wait 1 s each are submitted, so every process holds at
most, and in steady state exactly, ``M`` steps in flight. Efficiency at ``K``
processes is the steady rate over ``K`` times the rate of one process
(``harness.measure_chains``): 1.0 is linear scaling.

Figures: ``efficiency_at_2``, ``efficiency_at_4`` (target >= 0.9 at 4) and the rates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from taskforce_cli.bench import harness
from taskforce_cli.fleet import local_fleet

DELAY_S = 1.0
PROCESSES = (1, 2, 4)


def scale(*, quick: bool, progress: Console | None,
          plot_dir: Path | None = None) -> dict[str, Any]:
    """Steady rates through 1, 2 and 4 processes at a fixed in-flight count per process."""
    say = progress.print if progress else (lambda *_: None)
    per_process = 50 if quick else 100
    length, window_s = (8, 8.0) if quick else (8, 10.0)
    rates: dict[int, float] = {}
    with local_fleet(workers=0):
        harness.ensure_no_other_workers()
        for count in PROCESSES:
            with harness.bench_workers(count, pool="gevent", concurrency=per_process,
                                       tag=f"scale{count}-"):
                harness.wait_goals(harness.submit_chains(10 * count, 2, 0.05),
                                   timeout_s=120)  # warm-up
                chains = count * per_process
                say(f"{count} process(es): {chains} chains of {length} steps")
                _, rate = harness.measure_chains(chains, length, DELAY_S, window_s, say)
                rates[count] = rate.steps_per_s
                say(f"  {rates[count]:.0f} steps/s")
    figures = harness.header("scale") | {
        "workers": f"gevent pool, --concurrency {per_process} per process",
        "inflight_per_process": per_process,
        "chain_length": length,
        "step_wait_s": DELAY_S,
    }
    for count in PROCESSES:
        figures[f"steps_per_s_at_{count}"] = round(rates[count], 1)
    for count in PROCESSES[1:]:
        figures[f"efficiency_at_{count}"] = round(rates[count] / (count * rates[1]), 3)
    figures["plot"] = harness.figure(plot_dir, "scale",
                                     lambda axes: _draw(axes[0], rates, per_process))
    return figures


def _draw(ax: Any, rates: dict[int, float], per_process: int) -> None:
    counts = sorted(rates)
    ax.plot(counts, [rates[1] * c for c in counts], "--", color="grey",
            label="linear (K x one process)")
    ax.plot(counts, [c * per_process / DELAY_S for c in counts], ":", color="lightgrey",
            label=f"ideal ({per_process} in flight / 1 s per process)")
    ax.plot(counts, [rates[c] for c in counts], "o-", label="achieved")
    for c in counts[1:]:
        ax.annotate(f"{rates[c] / (c * rates[1]):.2f}", (c, rates[c]),
                    textcoords="offset points", xytext=(0, 6), ha="center")
    ax.set_xticks(counts)
    ax.set_xlabel("worker processes")
    ax.set_ylabel("steps per second")
    ax.set_title("scaling out (labels: efficiency vs linear)")
    ax.legend(fontsize="small")
