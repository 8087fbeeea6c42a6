"""``taskforce bench overhead-tracing``: ``bench overhead``'s no-op throughput with
tracing exporting to a local collector against tracing off, side by side in one run.

Two pairs of worker processes run the whole time, on the same servers: one pair with no
``OTEL_*`` setting (nothing installed, nothing exported), the other exporting traces and
metrics over OTLP/HTTP to a loopback receiver in this process
(:mod:`taskforce_cli.otlp_sink`, which decodes every request as a collector would).
Only one pair consumes at a time (Celery's ``cancel_consumer``/``add_consumer``), and
the rounds alternate, so the machine's drift hits both sides alike. The figure is
``tracing_throughput_ratio``: steps per second with tracing on over steps per second
with it off (target: at least 0.9). ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` in this
process's environment reaches the traced workers (to measure a lighter setup).
"""

from __future__ import annotations

import os
import platform
import socket
import statistics
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from shared import names
from shared.celery_app import app as celery_app
from shared.settings import get_settings
from taskforce_cli import otlp_sink
from taskforce_cli.bench.overhead import STEPS_PER_GOAL, taskforce_noop_rate
from taskforce_cli.fleet import WorkerProcess, local_fleet, start_worker, wait_for_workers

WORKERS_PER_SIDE = 2


def _consume(active: list[WorkerProcess], idle: list[WorkerProcess]) -> None:
    """Let only ``active`` consume the steps queue (replies awaited, so it holds when
    the next round starts)."""
    def names_of(workers: list[WorkerProcess]) -> list[str]:
        return [f"{w.name}@{socket.gethostname()}" for w in workers]  # Celery's %h

    celery_app.control.cancel_consumer(names.STEPS_QUEUE, destination=names_of(idle),
                                       reply=True, timeout=10)
    celery_app.control.add_consumer(names.STEPS_QUEUE, destination=names_of(active),
                                    reply=True, timeout=10)


def tracing_overhead(*, quick: bool, progress: Console | None) -> dict[str, Any]:
    """Taskforce no-op steps per second with tracing off and on, measured alternately."""
    say = progress.print if progress else (lambda *_: None)
    goal_count = 10 if quick else 40
    rounds = 3 if quick else 5
    settings = get_settings()
    with local_fleet(workers=0) as fleet, otlp_sink.running(keep=False) as sink:
        log_dir = settings.data_dir.resolve() / "logs"
        plain = {"SIM_LATENCY_SCALE": "0"}
        traced = plain | {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
                          "OTEL_SERVICE_NAME": "taskforce-bench-worker"}
        off = [start_worker(f"tracing-off{i + 1}-{os.getpid()}", log_dir=log_dir, env=plain)
               for i in range(WORKERS_PER_SIDE)]
        on = [start_worker(f"tracing-on{i + 1}-{os.getpid()}", log_dir=log_dir, env=traced)
              for i in range(WORKERS_PER_SIDE)]
        fleet.workers.extend(off + on)
        wait_for_workers(fleet.workers, timeout=300)  # four starting on a busy machine
        for side in (off, on):
            _consume(side, on if side is off else off)
            taskforce_noop_rate(3)  # warm-up: connections, imports, first spans
        say(f"{WORKERS_PER_SIDE} workers x {settings.worker_concurrency} threads per side")
        off_rates, on_rates = [], []
        spans_before = sink.span_count
        for index in range(rounds):
            _consume(off, on)
            off_rates.append(taskforce_noop_rate(goal_count))
            _consume(on, off)
            on_rates.append(taskforce_noop_rate(goal_count))
            say(f"round {index + 1}/{rounds}: tracing off {off_rates[-1]:.0f}/s, "
                f"on {on_rates[-1]:.0f}/s")
        steps = rounds * goal_count * (STEPS_PER_GOAL + 1)
        spans = sink.span_count - spans_before
    off_rate, on_rate = statistics.median(off_rates), statistics.median(on_rates)
    return {
        "benchmark": "overhead-tracing",
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "workers": f"{WORKERS_PER_SIDE} processes x {settings.worker_concurrency} threads "
                   "per side",
        "tracing_off_noop_steps_per_s": round(off_rate, 1),
        "tracing_on_noop_steps_per_s": round(on_rate, 1),
        "tracing_throughput_ratio": round(on_rate / off_rate, 3),
        "spans_received_per_step": round(spans / steps, 1),
        "disabled_instrumentations": settings.otel_python_disabled_instrumentations or "none",
        "otlp_requests": sink.requests,
        "noop_steps_per_round": goal_count * (STEPS_PER_GOAL + 1),
    }
