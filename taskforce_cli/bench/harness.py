"""What the ``dispatch``, ``inflight`` and ``scale`` benchmarks share: chains of ``echo``
steps submitted as ready-made plans, worker processes started per configuration, step
timings read back from Postgres (its clock stamps every start and commit, so client
and worker clocks never mix), and the PNG plots made from those figures.

A chain is ``echo(1) -> echo(2) -> ... -> echo(L) -> synthesize``: each step depends on
the one before it, so a goal has exactly one step in flight at any moment (besides the
dispatch gap) and ``N`` goals keep ``N`` steps in flight. Each ``echo`` waits
``delay_s`` seconds (a real sleep standing in for a remote call: no CPU).
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared import goals, names
from shared.celery_app import app as celery_app
from shared.domain.models import GoalRequest
from shared.errors import ConfigurationError, ServiceUnavailableError, TaskforceError
from shared.persistence.db import get_engine
from shared.persistence.timings import (
    StepTiming,
    database_now,
    goals_with_a_started_step,
    step_timings,
)
from shared.settings import get_settings
from taskforce_cli.fleet import WorkerProcess, start_worker, wait_for_workers

MAX_CHAIN = 30
"""Longest chain: 30 ``echo`` steps and a synthesis stay under ``MAX_PLAN_STEPS`` (32)."""

WORKER_ENV = {"SIM_LATENCY_SCALE": "0", "DB_POOL_SIZE": "10"}
"""Benchmark workers: no simulated LLM latency in the synthesis; at most 20 Postgres
connections per process (``DB_POOL_SIZE`` plus as many again under bursts)."""

Say = Callable[[str], None]


def chain_plan(length: int, delay_s: float) -> dict[str, Any]:
    """A plan of ``length`` chained ``echo`` steps of ``delay_s`` seconds, then a synthesis.

    Raises:
        ConfigurationError: ``length`` is not within 1..:data:`MAX_CHAIN`.
    """
    if not 1 <= length <= MAX_CHAIN:
        raise ConfigurationError(f"chain length must be 1..{MAX_CHAIN}, not {length}")
    steps: list[dict[str, Any]] = [
        {"id": i, "kind": "tool", "tool": "echo", "args": {"value": i, "delay_s": delay_s},
         "depends_on": [i - 1] if i > 1 else []}
        for i in range(1, length + 1)
    ]
    steps.append({"id": length + 1, "kind": "synthesize", "args": {"inputs": [f"${length}"]}})
    return {"steps": steps}


def submit_chains(count: int, length: int, delay_s: float) -> list[uuid.UUID]:
    """Submit ``count`` chain goals (no quota checks); return their ids."""
    plan = chain_plan(length, delay_s)
    return [goals.submit_goal(GoalRequest(goal="bench chain", plan=plan), check=False)
            for _ in range(count)]


def wait_goals(goal_ids: list[uuid.UUID], timeout_s: float) -> None:
    """Block until every goal succeeded (polled every 20 ms).

    Raises:
        ServiceUnavailableError: One failed or was cancelled, or ``timeout_s`` passed.
    """
    deadline = time.monotonic() + timeout_s
    pending = set(goal_ids)
    while pending and time.monotonic() < deadline:
        statuses = goals.goal_statuses(pending)
        failed = [g for g, s in statuses.items() if s in ("failed", "cancelled")]
        if failed:
            raise ServiceUnavailableError(f"benchmark goal {failed[0]} did not succeed")
        pending -= {g for g, s in statuses.items() if s == "succeeded"}
        time.sleep(0.02)  # fine enough for ``bench overhead``'s rounds of about 2 s
    if pending:
        raise ServiceUnavailableError(f"{len(pending)} benchmark goals unfinished "
                                      f"after {timeout_s:g} s")


def timings(goal_ids: list[uuid.UUID]) -> list[StepTiming]:
    """Every step's start and commit times for ``goal_ids``, from Postgres."""
    with get_engine().connect() as connection:
        return step_timings(connection, goal_ids=goal_ids)


def dispatch_gaps_ms(steps: list[StepTiming]) -> list[float]:
    """For every dependency edge: the dependent's start minus its last input's commit
    (milliseconds); a step with several dependencies counts once, from the latest."""
    by_key = {(s.goal_id, s.step_id): s for s in steps}
    gaps = []
    for step in steps:
        inputs = [by_key.get((step.goal_id, d)) for d in step.depends_on]
        if not inputs or step.started_at is None or any(
                i is None or i.finished_at is None for i in inputs):
            continue
        last = max(i.finished_at for i in inputs)  # type: ignore[union-attr]
        gaps.append((step.started_at - last).total_seconds() * 1000)
    return gaps


@dataclass(frozen=True)
class Throughput:
    """Completions of a run of chains while every chain was running.

    Attributes:
        steps_per_s: ``echo`` steps committed per second inside the window.
        window_s: The window: from the moment every chain had started (all ``N`` in
            flight) for the measuring time, or until the first chain ended (seconds).
        steps: ``echo`` steps committed inside the window.
    """

    steps_per_s: float
    window_s: float
    steps: int


def window_throughput(steps: list[StepTiming], window_s: float,
                      begin: datetime | None = None) -> Throughput:
    """Throughput of ``echo`` steps over ``window_s`` seconds from the moment every
    chain had started, or from ``begin`` when given (some never started: the worker
    could not keep them all in flight); closed earlier if a chain ended first.

    Raises:
        ServiceUnavailableError: The window is empty (a chain ended before the last one
            started: chains too short for the load).
    """
    tools = [s for s in steps if s.kind == "tool" and s.started_at]
    first: dict[uuid.UUID, datetime] = {}
    for step in tools:
        first[step.goal_id] = min(first.get(step.goal_id, step.started_at), step.started_at)
    done = [s for s in tools if s.finished_at]
    begin = begin or max(first.values())
    # A chain's synthesis starts once its last echo committed: the chain has ended.
    ended = [s.started_at for s in steps if s.kind == "synthesize" and s.started_at]
    end = min([begin + timedelta(seconds=window_s), *ended])
    span = (end - begin).total_seconds()
    if span <= 0:
        raise ServiceUnavailableError("no steady window: a chain ended before the last "
                                      "one started; use longer chains")
    count = sum(1 for s in done if begin < s.finished_at <= end)  # type: ignore[operator]
    return Throughput(count / span, span, count)


def measure_chains(count: int, length: int, delay_s: float, window_s: float,
                   say: Say, start_timeout_s: float = 120.0) -> tuple[list[StepTiming],
                                                                    Throughput]:
    """Keep ``count`` chains in flight: submit them, wait until every one has started
    (at most ``start_timeout_s``; past it the window opens anyway, and the worker's
    shortfall shows in the rate), measure for ``window_s`` seconds, then cancel them
    and purge their messages.

    Returns:
        Every step's timings and the throughput inside the window.
    """
    ids = submit_chains(count, length, delay_s)
    begin = None
    try:
        deadline = time.monotonic() + start_timeout_s
        started = 0
        while started < count and time.monotonic() < deadline:
            time.sleep(0.5)
            with get_engine().connect() as connection:
                started = goals_with_a_started_step(connection, goal_ids=ids)
                if started < count and time.monotonic() >= deadline:
                    begin = database_now(connection)
        say(f"  {started} of {count} chains running; measuring {window_s:g} s")
        time.sleep(window_s + 1.0)
        steps = timings(ids)
    finally:
        for goal_id in ids:
            with contextlib.suppress(TaskforceError):
                goals.cancel_goal(goal_id)
        celery_app.control.purge()  # the cancelled chains' messages; no other worker runs
    return steps, window_throughput(steps, window_s, begin)


def in_flight_series(steps: list[StepTiming], bin_s: float = 0.25) -> tuple[list[float],
                                                                           list[int]]:
    """Running ``echo`` steps over time, sampled every ``bin_s`` seconds from the first
    start: ``(seconds, counts)``, for the plots."""
    tools = [s for s in steps if s.kind == "tool" and s.started_at and s.finished_at]
    if not tools:
        return [], []
    origin = min(s.started_at for s in tools)  # type: ignore[type-var]
    spans = [((s.started_at - origin).total_seconds(),  # type: ignore[operator]
              (s.finished_at - origin).total_seconds()) for s in tools]  # type: ignore[operator]
    end = max(f for _, f in spans)
    times = [i * bin_s for i in range(int(end / bin_s) + 1)]
    return times, [sum(1 for s, f in spans if s <= t < f) for t in times]


def celery_pid(worker: WorkerProcess) -> int:
    """The pid of the Celery process a supervised ``taskforce worker`` runs."""
    pid = worker.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return int(children.read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return pid


def rss_kib(pid: int) -> int:
    """Resident memory of process ``pid`` (KiB, ``VmRSS``); 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class CpuUse:
    """What a process's threads got from the CPU scheduler over a measurement.

    Attributes:
        wall_s: Wall-clock time measured (seconds).
        cpu_s: Time its threads ran on a CPU (seconds).
        waiting_s: Time its threads were runnable but waited for a CPU (seconds): on a
            shared machine, the cost of the other work.
    """

    wall_s: float
    cpu_s: float
    waiting_s: float


def _schedstat(pid: int) -> tuple[float, float]:
    """(on CPU, waiting to run) seconds summed over ``pid``'s threads, from Linux's
    ``/proc/PID/task/TID/schedstat``; zeros where it is unreadable."""
    on_cpu = waiting = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            run, wait, _ = stat.read_text().split()
        except (OSError, ValueError):
            continue
        on_cpu, waiting = on_cpu + int(run), waiting + int(wait)
    return on_cpu / 1e9, waiting / 1e9


@contextmanager
def cpu_use(pid: int) -> Iterator[list[CpuUse]]:
    """Measure ``pid``'s CPU time and run-queue wait while the block runs; yields a list
    holding one :class:`CpuUse` once the block ends."""
    result: list[CpuUse] = []
    started, (cpu0, wait0) = time.monotonic(), _schedstat(pid)
    try:
        yield result
    finally:
        cpu1, wait1 = _schedstat(pid)
        result.append(CpuUse(time.monotonic() - started, cpu1 - cpu0, wait1 - wait0))


@contextmanager
def peak_rss(pid: int, interval_s: float = 0.2) -> Iterator[list[int]]:
    """Sample ``pid``'s resident memory while the block runs; yields a one-item list
    holding the peak (KiB) once the block ends."""
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            stop.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()


def ensure_no_other_workers() -> None:
    """Refuse to measure when workers the benchmark did not start consume the queue.

    Raises:
        ConfigurationError: Some worker answers a ping on the configured broker.
    """
    replies = celery_app.control.ping(timeout=1.0)
    if replies:
        found = sorted(name for reply in replies for name in reply)
        raise ConfigurationError(f"other workers consume this broker ({', '.join(found)}): "
                                 "benchmark figures would include them; stop them first")


@contextmanager
def bench_workers(count: int, *, pool: str, concurrency: int,
                  tag: str) -> Iterator[list[WorkerProcess]]:
    """Start ``count`` worker processes on the steps queue; stop them afterwards."""
    log_dir = get_settings().data_dir.resolve() / "logs"
    started = [start_worker(f"bench-{tag}{i + 1}-{os.getpid()}", log_dir=log_dir,
                            pool=pool, concurrency=concurrency, queues=names.STEPS_QUEUE,
                            env=WORKER_ENV)
               for i in range(count)]
    try:
        wait_for_workers(started)
        yield started
    finally:
        for worker in started:
            worker.stop(timeout=60)


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (inclusive method)."""
    return statistics.quantiles(values, n=1000, method="inclusive")[
        max(0, min(998, round(fraction * 1000) - 1))]


def header(benchmark: str) -> dict[str, Any]:
    """The fields every benchmark's figures start with: name, date, machine, and the
    machine's 1-minute load average when the figures were taken (a shared machine's
    other work shows there)."""
    return {
        "benchmark": benchmark,
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def figure(plot_dir: Path | None, name: str, draw: Callable[[Any], None],
           *, columns: int = 1) -> str | None:
    """Draw one PNG with matplotlib (headless) into ``plot_dir``; returns its path.

    Args:
        plot_dir: Where to write; None skips plotting.
        name: File name without extension.
        draw: Called with the list of axes (``columns`` of them) to draw on.
        columns: Side-by-side panels.
    """
    if plot_dir is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    plot_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = pyplot.subplots(1, columns, figsize=(5.5 * columns, 4), squeeze=False)
    draw(list(axes[0]))
    fig.tight_layout()
    path = plot_dir / f"{name}.png"
    fig.savefig(path, dpi=100)
    pyplot.close(fig)
    return str(path)
