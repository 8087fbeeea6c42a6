"""The plan-reuse part of ``taskforce bench memory``: what plan reuse saves on a stream of goals in which
goals repeat with different entities, and whether answers stay the same.

Stream (:func:`goal_stream`): from ``examples/goals/hotpotqa_comparison.jsonl``
(HotpotQA, CC BY-SA 4.0) every goal whose template (:mod:`shared.memory.templates`)
occurs more than once ("Who was born first, A or B?" with 22 pairs, ...), filled up
with goals that do not repeat from ``parallelqa.jsonl`` (LLMCompiler's ParallelQA, MIT)
and ``movie_recommendation.jsonl`` (BIG-bench, Apache 2.0), then shuffled with a fixed
seed. Reference answers are never read.

Set-up: the same stream runs twice in one run, on :data:`WORKERS` fresh worker
processes each time, with ``PLAN_REUSE_ENABLED`` off then on, each for a tenant of its
own (so neither run reuses the other's plans), with at most :data:`IN_FLIGHT` goals at
once in stream order; the ``sim`` model at its default latencies (about 1.9 s to plan).

Figures: ``planning_calls_saved_fraction`` (1 - planning calls with reuse / without),
``planning_latency_saved_fraction`` (1 - the mean seconds from submission to the first
plan stored, with reuse / without), ``answer_agreement`` (share of the stream's
positions whose answer is the same in both runs, the simulated mark aside), and the
raw counts behind them.
"""

from __future__ import annotations

import json
import os
import platform
import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from shared import auth, goals
from shared.domain.models import GoalRequest
from shared.errors import ServiceUnavailableError
from shared.memory.templates import template_of
from shared.names import SIMULATED_MARK
from shared.persistence.db import get_engine
from shared.persistence.episode_index import planning_figures
from shared.settings import get_settings, overridden_settings
from taskforce_cli.fleet import local_fleet, start_worker, wait_for_workers

WORKERS = 2
IN_FLIGHT = 8
GOAL_TIMEOUT_S = 900.0
POLL_S = 0.1
SEED = 20261121
GOALS_DIR = Path(__file__).resolve().parents[2] / "examples" / "goals"
REPEATING = "hotpotqa_comparison.jsonl"
FILLERS = ("parallelqa.jsonl", "movie_recommendation.jsonl")


def _texts(file_name: str) -> list[str]:
    with (GOALS_DIR / file_name).open(encoding="utf-8") as handle:
        return [json.loads(line)["goal"] for line in handle if line.strip()]


def goal_stream(count: int) -> list[str]:
    """``count`` goal texts: the repeating-template goals first chosen, fillers after,
    shuffled with a fixed seed (no reference answers read)."""
    by_template: dict[str, list[str]] = {}
    for text in _texts(REPEATING):
        by_template.setdefault(template_of(text).text, []).append(text)
    repeating = [t for group in by_template.values() if len(group) > 1 for t in group]
    fillers = [t for name in FILLERS for t in _texts(name)]
    rng = random.Random(SEED)
    rng.shuffle(fillers)
    share = min(len(repeating), count * 2 // 3)
    chosen = repeating[:share] + fillers[: count - share]
    rng.shuffle(chosen)
    return chosen


def _run_stream(texts: list[str], tenant: uuid.UUID) -> list[uuid.UUID]:
    """Submit ``texts`` in order, at most :data:`IN_FLIGHT` unfinished at once; wait
    for all. Returns the goal ids in stream order."""
    ids: list[uuid.UUID] = []
    open_ids: set[uuid.UUID] = set()
    deadline = time.monotonic() + GOAL_TIMEOUT_S
    queue = list(texts)
    while (queue or open_ids) and time.monotonic() < deadline:
        while queue and len(open_ids) < IN_FLIGHT:
            goal_id = goals.submit(GoalRequest(goal=queue.pop(0)), tenant_id=tenant).goal_id
            ids.append(goal_id)
            open_ids.add(goal_id)
        for goal_id, status in goals.goal_statuses(open_ids).items():
            if status in ("succeeded", "failed", "cancelled"):
                open_ids.discard(goal_id)
        time.sleep(POLL_S)
    if queue or open_ids:
        raise ServiceUnavailableError(f"{len(queue) + len(open_ids)} benchmark goals "
                                      "unfinished")
    return ids


def _measure(texts: list[str], *, reuse: bool, label: str) -> list[dict[str, Any]]:
    log_dir = get_settings().data_dir.resolve() / "logs"
    env = {"PLAN_REUSE_ENABLED": "true" if reuse else "false", "TENANT_QUOTAS_ENABLED": "false"}
    with local_fleet(workers=0) as fleet:
        fleet.workers.extend(start_worker(f"reuse-{label}{i + 1}-{os.getpid()}",
                                          log_dir=log_dir, env=env) for i in range(WORKERS))
        wait_for_workers(fleet.workers)
        tenant = auth.verify_key(auth.create_key(
            tenant=f"bench-reuse-{label}-{uuid.uuid4().hex[:8]}").key).tenant_id
        ids = _run_stream(texts, tenant)
        with get_engine().connect() as connection:
            figures = planning_figures(connection, goal_ids=ids)
    return [figures[goal_id] for goal_id in ids]


def _answer(value: str | None) -> str | None:
    return None if value is None else value.replace(SIMULATED_MARK, "").strip()


def reuse_figures(goals: int = 200, *, progress: Console | None = None) -> dict[str, Any]:
    """Run the stream of ``goals`` goals without and with plan reuse; the figures.

    Returns:
        ``planning_calls_saved_fraction``, ``planning_latency_saved_fraction``,
        ``answer_agreement`` (fractions in [0, 1]) and the counts and mean seconds of
        each run (see the module docstring).
    """
    say = progress.print if progress else (lambda *_: None)
    texts = goal_stream(goals)
    runs: dict[str, list[dict[str, Any]]] = {}
    with overridden_settings(TENANT_QUOTAS_ENABLED=False):
        for label, reuse in (("off", False), ("on", True)):
            say(f"{len(texts)} goals with plan reuse {label}")
            started = time.monotonic()
            runs[label] = _measure(texts, reuse=reuse, label=label)
            say(f"  done in {time.monotonic() - started:.1f} s")
    summary: dict[str, Any] = {}
    for label, rows in runs.items():
        planned = [r["to_plan_s"] for r in rows if r["to_plan_s"] is not None]
        summary[label] = {
            "planning_calls": sum(r["plan_calls"] for r in rows),
            "plans_reused": sum(r["reused_plan_from"] is not None for r in rows),
            "mean_s_to_first_plan": round(sum(planned) / max(len(planned), 1), 3),
            "succeeded": sum(r["status"] == "succeeded" for r in rows),
        }
    off, on = summary["off"], summary["on"]
    agree = sum(_answer(a["answer"]) == _answer(b["answer"])
                for a, b in zip(runs["off"], runs["on"]))
    reused_rows = [(a, b) for a, b in zip(runs["off"], runs["on"]) if b["reused_plan_from"]]
    return {
        "benchmark": "memory-reuse",
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "goals": len(texts),
        "workers": f"{WORKERS} processes, at most {IN_FLIGHT} goals in flight",
        "provider": "sim (simulated latency: about 1.9 s per planning call)",
        "planning_calls_saved_fraction": round(
            1 - on["planning_calls"] / max(off["planning_calls"], 1), 3),
        "planning_latency_saved_fraction": round(
            1 - on["mean_s_to_first_plan"] / max(off["mean_s_to_first_plan"], 1e-9), 3),
        "answer_agreement": round(agree / max(len(texts), 1), 3),
        "answer_agreement_of_reused": round(
            sum(_answer(a["answer"]) == _answer(b["answer"]) for a, b in reused_rows)
            / max(len(reused_rows), 1), 3),
        "reuse_off": off,
        "reuse_on": on,
    }
