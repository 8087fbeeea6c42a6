"""``taskforce bench rate-limit``: how much of a vendor's rate limit the fleet uses, and
how often the vendor still says 429.

Set-up: ``taskforce sim-llm`` in a child process on a free loopback port, enforcing
:data:`LIMIT_RPM` requests per minute itself (a sliding window, answering 429 beyond
it), and 4 worker processes whose fleet-wide limiter (``LLM_RATE_LIMITS``) is set to
the same rate, all pointed at the simulator as provider ``openai``. The fleet is kept
saturated with :data:`IN_FLIGHT` goals at a time (each a planning call, tool steps and
a synthesis call, at the simulator's default latencies: about 1.9 s to plan and 1.6 s to
answer), well beyond what the limit lets through.

Figures, from the simulator's ``/_stats`` over the measurement window (after a warm-up
that saturates the fleet):

* ``achieved_fraction``: successful requests per minute over :data:`LIMIT_RPM`
  (target >= 0.95);
* ``rate_limited_fraction``: requests the simulator answered 429 over all requests
  (target <= 0.01).

The full run measures 2 minutes against a 60 s window of 600 requests. ``--quick``
measures 20 s, against a 10 s window of 100 requests: the same rate, but a window that
fills within the run (a 60 s window could not refuse anything in 20 s).

The workers join whatever Redis and Postgres ``local_fleet`` uses (embedded when neither
``REDIS_URL`` nor ``DATABASE_URL`` is set); other workers on configured servers would
take goals too, without pointing at the simulator, so run it on a fleet of its own.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis
from rich.console import Console

from shared import goals, names
from shared.domain.models import GoalRequest
from shared.errors import ServiceUnavailableError, TaskforceError
from shared.llm.providers import get_provider
from shared.settings import child_environment, get_settings, override_settings
from taskforce_cli.fleet import local_fleet, start_worker, wait_for_workers

LIMIT_RPM = 600
WORKERS = 4
IN_FLIGHT = 64
WARMUP_S = 10.0
POLL_S = 0.25
SIM_STARTUP_TIMEOUT_S = 30.0

# Goal texts from the LLMCompiler benchmark sets (examples/goals: HotpotQA, CC BY-SA
# 4.0; ParallelQA, MIT): lookups in parallel, then a comparison.
GOALS = (
    "Were Scott Derrickson and Ed Wood of the same nationality?",
    "Are the Laleli Mosque and Esma Sultan Mansion located in the same neighborhood?",
    ("If Mariana Trench was 20% shallower and the Puerto Rico Trench was 20% deeper, "
     "which one would be shallower?"),
    ("With the Sahara Desert's area reduced by 30% and the Kalahari Desert's area "
     "magnified by 3.5 times, which one covers more ground?"),
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _simulator(*, per_window: int, window_s: float, log_path: Path) -> Iterator[str]:
    """``taskforce sim-llm`` allowing ``per_window`` requests per ``window_s`` seconds;
    yields its base URL (``http://127.0.0.1:PORT``).

    Raises:
        ServiceUnavailableError: It exited or did not answer within
            :data:`SIM_STARTUP_TIMEOUT_S` seconds.
    """
    port = _free_port()
    command = [sys.executable, "-m", "taskforce_cli.main", "sim-llm", "--port", str(port),
               "--rpm", str(per_window), "--window-s", str(window_s), "--loglevel", "warning"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env=child_environment({"SIM_LATENCY_SCALE": "1"}),
                                   start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SIM_STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise ServiceUnavailableError(
                    f"sim-llm exited with code {process.returncode} (log: {log_path})")
            try:
                httpx.get(f"{base_url}/_stats", timeout=1.0).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise ServiceUnavailableError("sim-llm did not start") from None
                time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _stats(base_url: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/_stats", timeout=5.0)
    response.raise_for_status()
    return response.json()


class _Feeder:
    """Keeps ``target`` goals in flight, topping up as goals end."""

    def __init__(self, target: int, model: str) -> None:
        self.target, self.model = target, model
        self.in_flight: set[uuid.UUID] = set()
        self.ended: dict[str, int] = {}
        self._texts = itertools.cycle(GOALS)

    def tick(self) -> None:
        """Count the goals that ended since the last tick, then top up."""
        if self.in_flight:
            for goal_id, status in goals.goal_statuses(self.in_flight).items():
                if status in ("succeeded", "failed", "cancelled"):
                    self.in_flight.discard(goal_id)
                    self.ended[status] = self.ended.get(status, 0) + 1
        while len(self.in_flight) < self.target:
            self.in_flight.add(goals.submit_goal(GoalRequest(
                goal=next(self._texts), provider="openai", model=self.model)))

    def run_for(self, seconds: float) -> None:
        """Tick every :data:`POLL_S` seconds for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.tick()
            time.sleep(POLL_S)

    def cancel_rest(self) -> None:
        """Cancel the goals still in flight (best effort)."""
        for goal_id in self.in_flight:
            with contextlib.suppress(TaskforceError):
                goals.cancel_goal(goal_id)


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    statuses = set(before["responses"]) | set(after["responses"])
    return {
        "requests": after["requests"] - before["requests"],
        "rate_limited": after["rate_limited"] - before["rate_limited"],
        "responses": {s: after["responses"].get(s, 0) - before["responses"].get(s, 0)
                      for s in sorted(statuses)},
    }


def rate_limit(*, quick: bool, progress: Console | None) -> dict[str, Any]:
    """Saturate a 4-worker fleet against a rate-limited simulator; figures as above."""
    say = progress.print if progress else (lambda *_: None)
    duration_s = 20.0 if quick else 120.0
    window_s = 10.0 if quick else 60.0
    per_window = round(LIMIT_RPM * window_s / 60.0)
    settings = get_settings()
    log_dir = settings.data_dir.resolve() / "logs"
    model = get_provider("openai").default_model
    limits = f"openai:*={LIMIT_RPM}rpm"
    with _simulator(per_window=per_window, window_s=window_s,
                    log_path=log_dir / f"sim-llm-bench-{os.getpid()}.log") as base_url:
        worker_env = {"OPENAI_BASE_URL": f"{base_url}/v1", "OPENAI_API_KEY": "sim-bench",
                      "LLM_RATE_LIMITS": limits}
        override_settings(**worker_env)  # this process submits goals on provider openai
        with local_fleet(workers=0) as fleet:
            fleet.workers.extend(
                start_worker(f"ratelimit{i + 1}-{os.getpid()}", log_dir=log_dir,
                             env=worker_env)
                for i in range(WORKERS)
            )
            wait_for_workers(fleet.workers)
            threads = get_settings().worker_concurrency
            say(f"simulator at {base_url}: {per_window} requests per {window_s:g} s; "
                f"{WORKERS} workers x {threads} threads, fleet limit {limits}")
            feeder = _Feeder(IN_FLIGHT, model)
            try:
                say(f"warming up for {WARMUP_S:g} s with {IN_FLIGHT} goals in flight")
                feeder.run_for(WARMUP_S)
                ended_before = dict(feeder.ended)
                before, started = _stats(base_url), time.monotonic()
                say(f"measuring for {duration_s:g} s")
                feeder.run_for(duration_s)
                after, elapsed = _stats(base_url), time.monotonic() - started
                limiter_keys = _limiter_keys(get_settings().redis_url)
            finally:
                feeder.cancel_rest()
    delta = _delta(before, after)
    ok = delta["responses"].get("200", 0)
    achieved_rpm = ok / (elapsed / 60.0)
    return {
        "benchmark": "rate-limit",
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "workers": f"{WORKERS} processes x {threads} threads",
        "goals_in_flight": IN_FLIGHT,
        "provider": f"openai (sim-llm), model {model}",
        "limit_rpm": LIMIT_RPM,
        "fleet_limit": limits,
        "simulator_limit": f"{per_window} requests per {window_s:g} s sliding window",
        "fleet_limiter_keys_seen": limiter_keys,
        "warmup_s": WARMUP_S,
        "duration_s": round(elapsed, 2),
        "requests": delta["requests"],
        "successful": ok,
        "rate_limited": delta["rate_limited"],
        "responses": delta["responses"],
        "goals_ended": {k: v - ended_before.get(k, 0) for k, v in feeder.ended.items()},
        "achieved_rpm": round(achieved_rpm, 1),
        "achieved_fraction": round(achieved_rpm / LIMIT_RPM, 4),
        "rate_limited_fraction": round(delta["rate_limited"] / max(delta["requests"], 1), 4),
    }


def _limiter_keys(redis_url: str | None) -> int:
    """How many fleet rate-limit keys exist now: 0 means no worker is throttling."""
    client = redis.Redis.from_url(redis_url or "")
    try:
        return sum(1 for _ in client.scan_iter(f"{names.RATE_LIMIT_PREFIX}*"))
    finally:
        client.close()
