"""``taskforce bench prompt-tokens``: input tokens per goal that real providers send.

Set-up: the vendor simulator (``taskforce sim-llm``) in a thread on a free loopback
port, with no latency, and :data:`WORKERS` worker processes pointed at it as provider
``openai`` (``OPENAI_BASE_URL`` and a placeholder key passed in their environment
only). The real ``openai`` provider and SDK build every request, so the simulator
sees exactly what a real model would; it counts input tokens as characters / 4 of the
messages and the response schema it receives.

Goals: the first :data:`GOALS_PER_SET` goals of ``examples/goals/movie_recommendation.jsonl``
(BIG-bench movie recommendation, Apache 2.0) and of ``examples/goals/parallelqa.jsonl``
(LLMCompiler's ParallelQA, MIT), as in docs/benchmarks.md. Reference answers are not read.

Figures per set, from ``llm_calls`` in Postgres (what the provider reported, so what a
vendor would bill): the mean input tokens per goal, the total input tokens, LLM calls
and goal outcomes; and the simulator's own input-token count, which should match.
"""

from __future__ import annotations

import json
import os
import platform
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from shared import goals
from shared.domain.models import GoalRequest
from shared.errors import ServiceUnavailableError
from shared.persistence import llm_calls as llm_call_store
from shared.persistence.db import get_engine
from shared.settings import get_settings
from taskforce_cli.fleet import local_fleet, start_worker, wait_for_workers
from taskforce_cli.vendor_sim.config import SimulatorConfig
from taskforce_cli.vendor_sim.server import running

WORKERS = 2
GOALS_PER_SET = 50
GOAL_TIMEOUT_S = 600.0
POLL_S = 0.2
GOALS_DIR = Path(__file__).resolve().parents[2] / "examples" / "goals"
SETS = {"movie": "movie_recommendation.jsonl", "parallelqa": "parallelqa.jsonl"}
MODEL = "gpt-4.1-mini"


def goal_texts(file_name: str, count: int) -> list[str]:
    """The first ``count`` goal texts of ``examples/goals/<file_name>`` (no answers)."""
    texts: list[str] = []
    with (GOALS_DIR / file_name).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip() and len(texts) < count:
                texts.append(json.loads(line)["goal"])
    return texts


def _wait(goal_ids: list[uuid.UUID], timeout_s: float) -> dict[str, int]:
    """Wait until every goal ended; returns how many ended in each status.

    Raises:
        ServiceUnavailableError: Some goals had not ended after ``timeout_s`` seconds.
    """
    deadline = time.monotonic() + timeout_s
    pending, ended = set(goal_ids), {}
    while pending and time.monotonic() < deadline:
        for goal_id, status in goals.goal_statuses(pending).items():
            if status in ("succeeded", "failed", "cancelled"):
                pending.discard(goal_id)
                ended[status] = ended.get(status, 0) + 1
        time.sleep(POLL_S)
    if pending:
        raise ServiceUnavailableError(f"{len(pending)} benchmark goals unfinished")
    return ended


def input_tokens(goal_ids: list[uuid.UUID]) -> tuple[int, int]:
    """(LLM calls, input tokens) recorded in ``llm_calls`` for ``goal_ids``."""
    with get_engine().connect() as connection:
        return llm_call_store.input_token_totals(connection, goal_ids=list(goal_ids))


def measure_set(texts: list[str], simulator: Any) -> dict[str, Any]:
    """Run ``texts`` as goals on provider ``openai``; the set's figures (see module)."""
    before = simulator.stats()["input_tokens"]
    ids = [goals.submit_goal(GoalRequest(goal=t, provider="openai", model=MODEL))
           for t in texts]
    ended = _wait(ids, GOAL_TIMEOUT_S)
    calls, tokens = input_tokens(ids)
    return {
        "goals": len(ids),
        "goals_ended": ended,
        "llm_calls": calls,
        "input_tokens_total": tokens,
        "input_tokens_per_goal": round(tokens / max(len(ids), 1), 1),
        "simulator_input_tokens": simulator.stats()["input_tokens"] - before,
    }


def prompt_tokens(*, quick: bool, progress: Console | None) -> dict[str, Any]:
    """Both sets, measured in one run on the same simulator and workers."""
    say = progress.print if progress else (lambda *_: None)
    count = 5 if quick else GOALS_PER_SET
    log_dir = get_settings().data_dir.resolve() / "logs"
    config = SimulatorConfig(latency_s={"plan": 0.0, "validate": 0.0, "synthesize": 0.0})
    results: dict[str, Any] = {}
    with running(config) as sim, local_fleet(workers=0) as fleet:
        # No plan reuse: a second run on the same database would reuse the first's plans.
        worker_env = {"OPENAI_BASE_URL": sim.openai_base_url, "OPENAI_API_KEY": "sim-bench",
                      "SIM_LATENCY_SCALE": "0", "PLAN_REUSE_ENABLED": "false"}
        fleet.workers.extend(
            start_worker(f"tokens{i + 1}-{os.getpid()}", log_dir=log_dir, env=worker_env)
            for i in range(WORKERS)
        )
        wait_for_workers(fleet.workers)
        say(f"simulator at {sim.base_url}; {WORKERS} workers on provider openai")
        for name, file_name in SETS.items():
            say(f"{name}: {count} goals")
            results[name] = measure_set(goal_texts(file_name, count), sim.simulator)
            say(f"{name}: {results[name]['input_tokens_per_goal']} input tokens per goal")
    return {
        "benchmark": "prompt-tokens",
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "workers": f"{WORKERS} processes",
        "provider": f"openai (sim-llm, simulated), model {MODEL}",
        "token_count": "characters / 4 of the messages and schema the simulator received",
        **results,
    }
