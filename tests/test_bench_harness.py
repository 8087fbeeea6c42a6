"""The figures of ``bench dispatch``, ``inflight`` and ``scale`` from known timings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import ConfigurationError, ServiceUnavailableError
from shared.persistence.timings import StepTiming
from taskforce_cli.bench import harness

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def chain(goal: uuid.UUID, start: float, *, steps: int, wait: float, gap: float,
          synthesize: bool = True) -> list[StepTiming]:
    """A chain whose steps each wait ``wait`` s and start ``gap`` s after the previous
    one committed."""
    out, t = [], start
    for n in range(1, steps + 1):
        out.append(StepTiming(goal, n, "tool", (n - 1,) if n > 1 else (), at(t), at(t + wait)))
        t += wait + gap
    if synthesize:
        out.append(StepTiming(goal, steps + 1, "synthesize", (steps,), at(t), at(t)))
    return out


def test_chain_plan_links_each_step_to_the_previous_one() -> None:
    plan = harness.chain_plan(3, 1.0)["steps"]
    assert [s.get("depends_on") for s in plan[:3]] == [[], [1], [2]]
    assert plan[-1]["args"] == {"inputs": ["$3"]}
    with pytest.raises(ConfigurationError):
        harness.chain_plan(harness.MAX_CHAIN + 1, 1.0)


def test_dispatch_gaps_are_start_minus_the_inputs_commit() -> None:
    steps = chain(uuid.uuid4(), 0.0, steps=4, wait=0.1, gap=0.004)
    gaps = harness.dispatch_gaps_ms(steps)
    assert len(gaps) == 4  # three echo edges and the synthesis
    assert gaps == pytest.approx([4.0] * 4)


def test_window_throughput_counts_commits_once_every_chain_runs() -> None:
    # Ten chains of 1 s steps started 0.1 s apart, 0.01 s dispatch gap: ten in flight.
    steps = [s for i in range(10)
             for s in chain(uuid.uuid4(), i * 0.1, steps=20, wait=1.0, gap=0.01)]
    rate = harness.window_throughput(steps, window_s=5.0)
    assert rate.window_s == pytest.approx(5.0)
    assert rate.steps_per_s == pytest.approx(10 / 1.01, rel=0.05)


def test_window_closes_when_a_chain_ends_and_is_refused_when_empty() -> None:
    short = chain(uuid.uuid4(), 0.0, steps=3, wait=1.0, gap=0.0)
    late = chain(uuid.uuid4(), 2.0, steps=5, wait=1.0, gap=0.0, synthesize=False)
    rate = harness.window_throughput(short + late, window_s=10.0)
    assert rate.window_s == pytest.approx(1.0)  # from 2.0 (all running) to 3.0 (one ended)
    later = chain(uuid.uuid4(), 4.0, steps=5, wait=1.0, gap=0.0, synthesize=False)
    with pytest.raises(ServiceUnavailableError):
        harness.window_throughput(short + later, window_s=10.0)


def test_percentile() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert harness.percentile(values, 0.99) == pytest.approx(990.0, abs=1.0)
    assert harness.percentile(values, 0.5) == pytest.approx(500.0, abs=1.0)


def test_plots_are_written_from_the_figures(tmp_path) -> None:
    path = harness.figure(tmp_path, "demo", lambda axes: axes[0].plot([1, 2], [3, 4]))
    assert path is not None and (tmp_path / "demo.png").read_bytes()[:4] == b"\x89PNG"
    assert harness.figure(None, "demo", lambda axes: None) is None
