"""``taskforce bench paper``: DAG against ReAct on the LLMCompiler paper's goal sets.

The paper (Kim et al., "An LLM Compiler for Parallel Function Calling", ICML 2024,
arXiv 2312.04511) reports in its Table 1 how much faster a planner that runs independent
tool calls in parallel answers than a sequential ReAct agent: 1.80x on HotpotQA, 3.74x on
Movie Recommendation, 2.15x on ParallelQA (latency about planning + the slowest tool +
the answer, against one LLM call per action). This benchmark runs the first ``limit``
goals of each of the three example sets (``examples/goals/``, see its README for their
sources and licences) twice, on the same provider and model: as DAGs (``mode="dag"``)
and with Taskforce's ReAct mode (``mode="react"``), both through the same workers, side
by side (up to :data:`IN_FLIGHT` goals of each mode at once).

By default the provider is ``sim``, with its latency profile (``SIM_PLAN_LATENCY_S``
1.9 s, ``SIM_SYNTHESIZE_LATENCY_S`` 1.6 s, ``SIM_REACT_LATENCY_S`` 1.9 s, search
``SIM_TOOL_LATENCY_S`` 0.5 s, times ``SIM_LATENCY_SCALE``): latencies and tokens are then
simulated, and said so. ``--provider``/``--model`` run any configured provider.

Figures per set: mean and median latency per goal in each mode (seconds, from the goal's
creation to its end as Postgres recorded them), the speedup (ReAct mean / DAG mean)
next to the paper's, tokens, USD and LLM calls per goal (from ``llm_calls``), goals
succeeded, how many goals got the same answer in both modes, and the accuracy of each
mode, scored only after the run against the sets' reference answers (which nothing that
answers ever reads). The plot (PNG) is drawn from these figures.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from shared import goals
from shared.domain.models import Goal, GoalRequest
from shared.errors import ConfigurationError, ServiceUnavailableError
from shared.llm.pricing import cost_usd
from shared.names import SIMULATED_MARK
from shared.settings import get_settings
from taskforce_cli.fleet import load_sample_corpus, local_fleet, start_worker, wait_for_workers

REPO = Path(__file__).resolve().parents[2]
GOALS_DIR = REPO / "examples" / "goals"
PLOT_NAME = Path("benchmarks") / "paper.png"
# Set name -> (file, the paper's Table 1 speedup of LLMCompiler over ReAct).
SETS = {
    "hotpotqa": ("hotpotqa_comparison.jsonl", 1.80),
    "movie": ("movie_recommendation.jsonl", 3.74),
    "parallelqa": ("parallelqa.jsonl", 2.15),
}
MODES = ("dag", "react")
DEFAULT_LIMIT = 8
WORKERS = 2
CONCURRENCY = 16
IN_FLIGHT = 4
GOAL_TIMEOUT_S = 900.0
POLL_S = 0.1
# Simulated tokens are free; this list price shows what they would cost on a small
# hosted model (``shared.llm.pricing``).
REFERENCE_PRICE = ("openai", "gpt-4o-mini")


def read_set(file_name: str, limit: int) -> list[dict[str, str]]:
    """The first ``limit`` goals of ``examples/goals/<file_name>``: ``{"id", "goal",
    "answer"}`` each. The reference answer stays here, for scoring after the run."""
    rows: list[dict[str, str]] = []
    with (GOALS_DIR / file_name).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip() and len(rows) < limit:
                row = json.loads(line)
                rows.append({"id": row["id"], "goal": row["goal"], "answer": row["answer"]})
    return rows


def _normal(text: str) -> str:
    text = text.replace(SIMULATED_MARK, "").lower()
    return " ".join(re.sub(r"[^\w\s.]", " ", text).split())


def correct(answer: str | None, reference: str) -> bool:
    """Loose scoring: the normalised reference (case, punctuation and the simulated
    mark ignored) appears as whole words in the normalised answer."""
    if not answer:
        return False
    ref = _normal(reference)
    return bool(ref) and re.search(rf"(?<!\w){re.escape(ref)}(?!\w)", _normal(answer)) is not None


def _run_side_by_side(rows: list[dict[str, str]], *, provider: str | None,
                      model: str | None) -> dict[str, list[Goal]]:
    """Run every goal in both modes, at most :data:`IN_FLIGHT` of each mode at once;
    the ended goals per mode, in the order of ``rows``.

    Raises:
        ServiceUnavailableError: Goals still running after :data:`GOAL_TIMEOUT_S`.
    """
    queues = {mode: list(enumerate(rows)) for mode in MODES}
    running: dict[uuid.UUID, tuple[str, int]] = {}
    ended: dict[str, dict[int, Goal]] = {mode: {} for mode in MODES}
    deadline = time.monotonic() + GOAL_TIMEOUT_S
    while any(queues.values()) or running:
        for mode in MODES:
            in_flight = sum(1 for m, _ in running.values() if m == mode)
            while queues[mode] and in_flight < IN_FLIGHT:
                index, row = queues[mode].pop(0)
                request = GoalRequest(goal=row["goal"], provider=provider, model=model,
                                      mode=mode, metadata={"bench": "paper", "id": row["id"]})
                running[goals.submit_goal(request)] = (mode, index)
                in_flight += 1
        for goal_id, status in goals.goal_statuses(list(running)).items():
            if status in ("succeeded", "failed", "cancelled"):
                mode, index = running.pop(goal_id)
                ended[mode][index] = goals.get_goal(goal_id)
        if time.monotonic() > deadline:
            raise ServiceUnavailableError(f"{len(running)} benchmark goals unfinished")
        time.sleep(POLL_S)
    return {mode: [ended[mode][i] for i in range(len(rows))] for mode in MODES}


def _warm_up(provider: str | None, model: str | None) -> None:
    """Run a few throwaway goals of parallel calculator steps first, so that each
    worker has started its isolated tool process (a one-time cost of seconds on a busy
    machine) before anything is measured.

    Raises:
        ServiceUnavailableError: They did not end in time.
    """
    calc = [{"id": i, "kind": "tool", "tool": "calculator", "args": {"expression": f"{i} * 2"}}
            for i in range(1, 5)]
    plan = {"steps": [*calc, {"id": 5, "kind": "synthesize",
                              "args": {"inputs": [f"${i}" for i in range(1, 5)]}}]}
    ids = [goals.submit_goal(GoalRequest(goal="warm-up", provider=provider, model=model,
                                         plan=plan, metadata={"bench": "paper-warm-up"}))
           for _ in range(WORKERS * 2)]
    deadline = time.monotonic() + GOAL_TIMEOUT_S
    while any(status not in ("succeeded", "failed", "cancelled")
              for status in goals.goal_statuses(ids).values()):
        if time.monotonic() > deadline:
            raise ServiceUnavailableError("the warm-up goals did not end")
        time.sleep(POLL_S)


def _mode_figures(views: list[Goal], rows: list[dict[str, str]]) -> dict[str, Any]:
    latencies = [(v.finished_at - v.created_at).total_seconds() for v in views]
    n = max(len(views), 1)
    input_tokens = sum(v.input_tokens for v in views)
    output_tokens = sum(v.output_tokens for v in views)
    return {
        "latency_mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "tokens_per_goal": round((input_tokens + output_tokens) / n, 1),
        "usd_per_goal": round(sum(v.cost_usd for v in views) / n, 8),
        "usd_per_goal_at_reference_price": round(
            cost_usd(*REFERENCE_PRICE, input_tokens, output_tokens) / n, 8),
        "steps_per_goal": round(sum(len(v.steps) for v in views) / n, 2),
        "succeeded": sum(v.status == "succeeded" for v in views),
        "accuracy": round(sum(correct(v.answer, r["answer"])
                              for v, r in zip(views, rows)) / n, 3),
        "simulated": all(v.simulated for v in views),
    }


def measure_set(name: str, limit: int, *, provider: str | None, model: str | None,
                say: Any) -> dict[str, Any]:
    """Both modes on the first ``limit`` goals of set ``name``; the set's figures."""
    file_name, paper_speedup = SETS[name]
    rows = read_set(file_name, limit)
    views = _run_side_by_side(rows, provider=provider, model=model)
    figures = {mode: _mode_figures(views[mode], rows) for mode in MODES}
    dag, react = figures["dag"], figures["react"]
    speedup = (round(react["latency_mean_s"] / dag["latency_mean_s"], 2)
               if dag["latency_mean_s"] else None)
    say(f"{name}: {len(rows)} goals, DAG {dag['latency_mean_s']} s, ReAct "
        f"{react['latency_mean_s']} s per goal: {speedup}x (paper {paper_speedup}x)")
    return {
        "goals": len(rows),
        "speedup": speedup,
        "paper_speedup": paper_speedup,
        "latency_mean_s": {m: figures[m]["latency_mean_s"] for m in MODES},
        "latency_p50_s": {m: figures[m]["latency_p50_s"] for m in MODES},
        "tokens_per_goal": {m: figures[m]["tokens_per_goal"] for m in MODES},
        "token_ratio": round(react["tokens_per_goal"] / max(dag["tokens_per_goal"], 1), 2),
        "usd_per_goal": {m: figures[m]["usd_per_goal"] for m in MODES},
        "usd_per_goal_at_reference_price": {
            m: figures[m]["usd_per_goal_at_reference_price"] for m in MODES},
        "steps_per_goal": {m: figures[m]["steps_per_goal"] for m in MODES},
        "succeeded": {m: figures[m]["succeeded"] for m in MODES},
        "accuracy": {m: figures[m]["accuracy"] for m in MODES},
        "same_answer": sum(d.answer == r.answer
                           for d, r in zip(views["dag"], views["react"])),
        "simulated": dag["simulated"] and react["simulated"],
        "model": views["dag"][0].model,
    }


def _profile() -> dict[str, float]:
    s = get_settings()
    return {"plan_s": s.sim_plan_latency_s, "react_turn_s": s.sim_react_latency_s,
            "synthesize_s": s.sim_synthesize_latency_s, "search_s": s.sim_tool_latency_s,
            "scale": s.sim_latency_scale}


def paper(*, quick: bool, progress: Console | None, provider: str | None = None,
          model: str | None = None, limit: int | None = None,
          plot_dir: Path | None = None) -> dict[str, Any]:
    """Every set in both modes, in one run on the same workers; the figures (module
    docstring), and the plot written to ``plot_dir/paper.png`` (default:
    ``docs/benchmarks/paper.png`` in a source checkout, else
    ``DATA_DIR/benchmarks/paper.png``).

    Raises:
        ConfigurationError: ``limit`` below 1.
        ServiceUnavailableError: Goals did not end in time.
    """
    say = progress.print if progress else (lambda *_: None)
    count = limit if limit is not None else (1 if quick else DEFAULT_LIMIT)
    if count < 1:
        raise ConfigurationError("--limit must be at least 1")
    provider_name = provider or get_settings().default_provider
    log_dir = get_settings().data_dir.resolve() / "logs"
    results: dict[str, Any] = {}
    with local_fleet(workers=0) as fleet:
        load_sample_corpus()  # what ``search`` finds, as for ``taskforce run``
        fleet.workers.extend(
            start_worker(f"paper{i + 1}-{os.getpid()}", log_dir=log_dir,
                         concurrency=CONCURRENCY)
            for i in range(WORKERS))
        wait_for_workers(fleet.workers)
        say(f"{WORKERS} workers; provider {provider_name}; {count} goals per set")
        _warm_up(provider, model)
        for name in SETS:
            results[name] = measure_set(name, count, provider=provider, model=model, say=say)
    simulated = all(r["simulated"] for r in results.values())
    figures: dict[str, Any] = {
        "benchmark": "paper",
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "note": "measured while the machine was shared; ratios are measured side by side",
        "workers": f"{WORKERS} processes x {CONCURRENCY} threads; {IN_FLIGHT} goals of "
                   "each mode at once",
        "provider": provider_name + (" (simulated)" if simulated else ""),
        "model": next(iter(results.values()))["model"],
        "goals_per_set": count,
        "reference_price": "/".join(REFERENCE_PRICE),
        "sets": results,
    }
    if provider_name == "sim":
        figures["sim_latency_profile"] = _profile()
    from taskforce_cli.bench.paper_plot import draw

    docs = REPO / "docs"
    default = docs / PLOT_NAME if docs.is_dir() else get_settings().data_dir / PLOT_NAME
    target = plot_dir / PLOT_NAME.name if plot_dir is not None else default
    figures["plot"] = str(draw(figures, target))
    return figures
