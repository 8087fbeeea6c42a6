"""``taskforce bench gateway``: what the gateway's request checks add to ``POST /v1/goals``.

Two real gateways (uvicorn on loopback, each in a subprocess) on the same Redis and
Postgres: one with every measured check off, one with the checks on: authentication
(``AUTH_ENABLED`` and a valid bearer key, looked up in Postgres on every request) and the
tenant's quotas (goals per minute in Redis, goals in flight under the tenant's row lock).
The same requests, with the same headers and body, go to both, sequentially over one
keep-alive connection each, interleaved in rounds so machine noise hits both. Only the
POST's round trip is timed (client side, ``time.perf_counter``); no workers run, so
goals just queue, and they are cancelled at the end.

A new check joins the comparison with an entry in :data:`CHECKS`.
"""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console

from shared import auth, goals
from shared.errors import ConfigurationError, ServiceUnavailableError, TaskforceError
from shared.settings import child_environment
from taskforce_cli.fleet import local_fleet

CHECKS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "auth": ({"AUTH_ENABLED": "true"}, {"AUTH_ENABLED": "false"}),
    # On: both quotas checked (GCRA in Redis, the in-flight count under the tenant's row
    # lock) with limits the benchmark never reaches; off: neither is checked.
    "quotas": ({"TENANT_QUOTAS_ENABLED": "true", "TENANT_GOALS_PER_MINUTE": "10000000",
                "TENANT_MAX_GOALS_IN_FLIGHT": "10000000"},
               {"TENANT_QUOTAS_ENABLED": "false"}),
}
"""Each measurable check: (environment that turns it on, environment that turns it off)."""

START_TIMEOUT_S = 60.0  # how long a gateway may take to answer /healthz


@dataclass
class Gateway:
    """One ``uvicorn api_gateway.app:app`` subprocess on a loopback port."""

    label: str
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    latencies_ms: list[float] = field(default_factory=list)

    def start(self) -> None:
        """Start it and wait until ``/healthz`` answers 200.

        Raises:
            ServiceUnavailableError: It exited or did not answer within 60 s.
        """
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api_gateway.app:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--no-access-log"],
            env=child_environment(self.env), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceUnavailableError(f"gateway {self.label} exited at start")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise ServiceUnavailableError(f"gateway {self.label} not up after {START_TIMEOUT_S} s")

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Terminate it and wait for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post_goals(client: httpx.Client, count: int, headers: dict[str, str],
                submitted: list[uuid.UUID]) -> list[float]:
    """``count`` sequential ``POST /v1/goals``; each round trip in milliseconds.

    Raises:
        ServiceUnavailableError: An answer was not 202.
    """
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.post("/v1/goals", json={"goal": "bench gateway latency"},
                               headers=headers)
        latencies.append((time.perf_counter() - started) * 1_000)
        if response.status_code != 202:
            raise ServiceUnavailableError(
                f"POST /v1/goals answered {response.status_code}: {response.text[:200]}")
        submitted.append(uuid.UUID(response.json()["id"]))
    return latencies


def _summary(latencies_ms: list[float]) -> dict[str, float]:
    """p50 and p99 of ``latencies_ms`` (milliseconds, 2 decimals)."""
    return {"p50_ms": round(statistics.median(latencies_ms), 2),
            "p99_ms": round(statistics.quantiles(latencies_ms, n=100)[98], 2)}


def gateway_latency(*, checks: Sequence[str] = ("auth", "quotas"), requests_per_mode: int = 500,
                    rounds: int = 10, progress: Console | None = None) -> dict[str, Any]:
    """``POST /v1/goals`` latency with ``checks`` off and on, measured side by side.

    Args:
        checks: Names in :data:`CHECKS` to turn on in the second gateway (all of them
            are off in the first).
        requests_per_mode: Timed requests per gateway (split evenly over the rounds).
        rounds: Rounds; each sends a share to both gateways, alternating which goes first.
        progress: Where to print progress, if anywhere.

    Returns:
        Per mode (``checks_off``, ``checks_on``) p50 and p99 in milliseconds, and what
        the checks add (``added_p50_ms``, ``added_p99_ms``).

    Raises:
        ConfigurationError: A check name is not in :data:`CHECKS`.
        ServiceUnavailableError: A gateway did not start or refused a request.
    """
    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        raise ConfigurationError(f"unknown checks {unknown} (available: {sorted(CHECKS)})")
    say = progress.print if progress else (lambda *_: None)
    on_env: dict[str, str] = {}
    off_env: dict[str, str] = {}
    for name in checks:
        on_env |= CHECKS[name][0]
        off_env |= CHECKS[name][1]
    per_round = max(1, requests_per_mode // rounds)
    submitted: list[uuid.UUID] = []
    with local_fleet(workers=0):
        key = auth.create_key(tenant=f"bench-gateway-{uuid.uuid4().hex[:8]}",
                              scopes=(auth.GOALS_SUBMIT,)).key
        headers = {"Authorization": f"Bearer {key}"}  # sent to both: same bytes
        gateways = [Gateway("checks_off", off_env), Gateway("checks_on", on_env)]
        clients: list[httpx.Client] = []
        try:
            for gateway in gateways:
                gateway.start()
                clients.append(httpx.Client(base_url=gateway.url, timeout=30))
            for client in clients:  # warm-up: connections, pools, caches; not timed
                _post_goals(client, 20, headers, submitted)
            for index in range(rounds):
                order = [0, 1] if index % 2 == 0 else [1, 0]
                for which in order:
                    gateways[which].latencies_ms += _post_goals(
                        clients[which], per_round, headers, submitted)
                say(f"round {index + 1}/{rounds}: " + ", ".join(
                    f"{g.label} p50 {statistics.median(g.latencies_ms):.2f} ms"
                    for g in gateways))
        finally:
            for client in clients:
                client.close()
            for gateway in gateways:
                gateway.stop()
            _cancel(submitted)
    off, on = (_summary(g.latencies_ms) for g in gateways)
    return {
        "benchmark": "gateway",
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "checks": list(checks),
        "requests_per_mode": per_round * rounds,
        "rounds": rounds,
        "checks_off": off,
        "checks_on": on,
        "added_p50_ms": round(on["p50_ms"] - off["p50_ms"], 2),
        "added_p99_ms": round(on["p99_ms"] - off["p99_ms"], 2),
    }


def _cancel(goal_ids: list[uuid.UUID]) -> None:
    """Cancel the benchmark's goals, so no later worker plans them."""
    for goal_id in goal_ids:
        try:
            goals.cancel_goal(goal_id)
        except TaskforceError:
            pass  # ended already, or the servers are gone


def gateway(*, quick: bool, progress: Console | None) -> dict[str, Any]:
    """The benchmark as ``taskforce bench gateway`` runs it (authentication and quotas
    on vs off)."""
    if quick:
        return gateway_latency(requests_per_mode=40, rounds=2, progress=progress)
    return gateway_latency(progress=progress)
