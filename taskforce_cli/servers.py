"""``taskforce worker``, ``gateway``, ``beat``, ``flower`` and ``sim-llm``: the commands
that start one long-running server process each (registered on the CLI by
:mod:`taskforce_cli.main`)."""

from __future__ import annotations

import os
import signal
import sys
from typing import Annotated, Optional

import typer

from shared import names
from shared.auth import is_loopback
from shared.errors import TaskforceError
from shared.settings import child_environment, get_settings, override_settings
from taskforce_cli.console import ConcurrencyOption, err, fail


def worker(
    concurrency: ConcurrencyOption = None,
    pool: Annotated[Optional[str], typer.Option(help="threads or gevent (default: WORKER_POOL).")] = None,
    queues: Annotated[str, typer.Option(help="Queues to consume, comma-separated.")] = (
        f"{names.STEPS_QUEUE},{names.MAINTENANCE_QUEUE}"
    ),
    name: Annotated[Optional[str], typer.Option(help="Worker name (before '@host').")] = None,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    supervise: Annotated[bool, typer.Option(
        help="Run Celery in a child process, restarted with backoff if it fails "
             "(--no-supervise: in this process).")] = True,
) -> None:
    """Start a worker process that plans goals and runs steps (``--pool gevent
    --concurrency 1000`` keeps a thousand I/O-bound steps in flight in one process; see
    "Choosing a pool" in docs/architecture.md).

    On SIGTERM it stops taking steps, lets running ones finish for
    WORKER_SOFT_SHUTDOWN_TIMEOUT_S and hands back the rest (see ``_shutdown_plan``)."""
    from taskforce_cli import supervise as supervisor
    from taskforce_cli import worker_pool

    settings = get_settings()
    if not settings.redis_url or not settings.database_url:
        fail("a worker needs REDIS_URL and DATABASE_URL")
    pool = pool or settings.worker_pool
    if supervise:
        # The child is told its pool explicitly: it patches for it before any import.
        options = [f"--pool={pool}", f"--queues={queues}", f"--loglevel={loglevel}"]
        options += [f"--concurrency={concurrency}"] if concurrency else []
        options += [f"--name={name}"] if name else []
        module = "taskforce_cli.worker_child"
        translate, stop_timeout_s = _shutdown_plan(pool)
        raise typer.Exit(supervisor.supervise(supervisor.worker_command(module, options),
                                              translate=translate,
                                              stop_timeout_s=stop_timeout_s))
    try:
        worker_pool.ensure_patched(pool)
    except TaskforceError as exc:
        fail(str(exc))
    # The Celery configuration sizes the broker's connection pool from these.
    override_settings(worker_pool=pool,
                      worker_concurrency=concurrency or settings.worker_concurrency)
    from shared.celery_app import app as celery

    argv = [
        "worker",
        f"--pool={pool}",
        f"--concurrency={concurrency or settings.worker_concurrency}",
        f"--queues={queues}",
        f"--loglevel={loglevel}",
        "--without-mingle",
        "--without-gossip",
        "--events",
    ]
    if name:
        argv.append(f"--hostname={name}@%h")
    raise typer.Exit(supervisor.run_celery_worker(celery, argv))


SOFT_SHUTDOWN_MARGIN_S = 20.0  # prefork: Celery's own cancel and exit, after its timeout


def _shutdown_plan(pool: str) -> tuple[dict[int, int] | None, float | None]:
    """How ``taskforce worker`` stops on SIGTERM: the signal its Celery child gets, and
    how long the child may take before it is killed (see :mod:`taskforce_cli.supervise`).

    With ``WORKER_SOFT_SHUTDOWN_TIMEOUT_S`` > 0: the prefork pool gets Celery's soft
    shutdown (SIGQUIT; Celery cancels the steps still running after the timeout), with a
    backstop ``SOFT_SHUTDOWN_MARGIN_S`` later; the other pools, which cannot cancel a
    running step, get Celery's warm shutdown (SIGTERM) bounded by the timeout itself.
    With 0: a warm shutdown that waits for every running step.
    """
    timeout = get_settings().worker_soft_shutdown_timeout_s
    if timeout <= 0:
        return None, None
    if pool == "prefork":
        return {signal.SIGTERM: signal.SIGQUIT}, timeout + SOFT_SHUTDOWN_MARGIN_S
    return None, timeout


def gateway(
    host: Annotated[Optional[str], typer.Option(help="Bind address (default: GATEWAY_HOST).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default: GATEWAY_PORT).")] = None,
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate",
                                                help="Apply migrations first.")] = True,
) -> None:
    """Start the HTTP gateway (FastAPI on uvicorn)."""
    import uvicorn

    from shared.persistence.db import migrate

    settings = get_settings()
    host = host or settings.gateway_host
    if not settings.auth_enabled and not is_loopback(host):
        fail(f"refusing to serve on {host} with AUTH_ENABLED=false: anyone who can reach "
              "it could spend your LLM keys. Bind a loopback address (127.0.0.1, ::1, "
              "localhost) or enable authentication and create keys with "
              "`taskforce keys create`.")
    if not settings.redis_url or not settings.database_url:
        fail("the gateway needs REDIS_URL and DATABASE_URL")
    if migrate_first:
        migrate()
    uvicorn.run("api_gateway.app:app", host=host,
                port=port or settings.gateway_port)


def beat(loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO") -> None:
    """Start the beat scheduler (one per deployment) for the maintenance jobs."""
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "scheduler.beat:app",
                               "beat", f"--loglevel={loglevel}",
                               f"--schedule={get_settings().data_dir / 'celerybeat-schedule'}"])


def flower(
    port: Annotated[int, typer.Option(help="Port.")] = 5555,
    address: Annotated[str, typer.Option(
        help="Interface to listen on (0.0.0.0 for every one).")] = "127.0.0.1",
    unauthenticated: Annotated[bool, typer.Option(
        "--unauthenticated",
        help="Start without FLOWER_BASIC_AUTH; allowed on a loopback address only.")] = False,
) -> None:
    """Start Flower, the Celery monitoring UI, for this deployment's broker.

    Flower can revoke tasks and shut workers down, so it needs HTTP basic auth:
    ``FLOWER_BASIC_AUTH=user:password[,user2:password2]``. The credentials reach Flower
    through its environment (Flower reads ``FLOWER_BASIC_AUTH`` itself), never its
    command line. Without them it starts only with ``--unauthenticated`` on loopback;
    otherwise it exits with status 2.
    """
    secret = get_settings().flower_basic_auth
    credentials = secret.get_secret_value().strip() if secret else ""
    env = {k: v for k, v in child_environment().items() if k != "FLOWER_BASIC_AUTH"}
    if credentials:
        entries = [entry.strip() for entry in credentials.split(",")]
        if any(not user or not password for user, _, password in
               (entry.partition(":") for entry in entries)):
            fail("FLOWER_BASIC_AUTH must be user:password[,user2:password2], "
                  "each with a user name and a password")
        env["FLOWER_BASIC_AUTH"] = ",".join(entries)
    elif not unauthenticated:
        fail("Flower needs authentication: set FLOWER_BASIC_AUTH=user:password "
              "(or pass --unauthenticated to listen on a loopback address without it)")
    elif not is_loopback(address):
        fail(f"--unauthenticated is allowed on a loopback address only, not {address!r}")
    os.execvpe(sys.executable, [sys.executable, "-m", "celery", "-A", "shared.celery_app:app",
                                "flower", f"--port={port}", f"--address={address}"], env)


def sim_llm(
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
    host: Annotated[str, typer.Option(help="Bind address (loopback only).")] = "127.0.0.1",
    latency: Annotated[list[str], typer.Option(
        help="Mean latency per purpose, PURPOSE=SECONDS (repeatable; default: the sim "
             "provider's profile times SIM_LATENCY_SCALE).")] = [],
    latency_jitter: Annotated[Optional[float], typer.Option(
        help="Relative latency spread (default: SIM_LATENCY_JITTER).")] = None,
    rpm: Annotated[Optional[int], typer.Option(
        envvar="SIM_LLM_RPM", help="Requests per window before 429.")] = None,
    tpm: Annotated[Optional[int], typer.Option(
        envvar="SIM_LLM_TPM", help="Tokens per window before 429.")] = None,
    window_s: Annotated[float, typer.Option(help="Rate-limit window (seconds).")] = 60.0,
    fault_rate: Annotated[list[str], typer.Option(
        envvar="SIM_LLM_FAULT_RATES",
        help="FAULT=PROBABILITY, e.g. 500=0.05, timeout=0.01 (repeatable).")] = [],
    fault_sequence: Annotated[list[str], typer.Option(
        envvar="SIM_LLM_FAULT_SEQUENCE",
        help="Faults of the first requests in order, e.g. 500,ok.")] = [],
    seed: Annotated[int, typer.Option(envvar="SIM_LLM_SEED", help="RNG seed.")] = 0,
    retry_after_s: Annotated[float, typer.Option(
        help="Retry-After of injected 429s (seconds).")] = 1.0,
    timeout_sleep_s: Annotated[float, typer.Option(
        help="How long a 'timeout' fault holds a response (seconds).")] = 120.0,
    json_schema: Annotated[bool, typer.Option(
        "--json-schema/--no-json-schema",
        help="Accept response_format json_schema (off: 400, like older servers).")] = True,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Serve a simulated OpenAI/Anthropic API on loopback (answers like the sim provider)."""
    from taskforce_cli.vendor_sim.config import SimulatorConfig, parse_latencies
    from taskforce_cli.vendor_sim.faults import parse_rates, parse_sequence
    from taskforce_cli.vendor_sim.server import serve

    settings = get_settings()
    scale = settings.sim_latency_scale
    profile = {"plan": settings.sim_plan_latency_s * scale,
               "validate": settings.sim_validate_latency_s * scale,
               "synthesize": settings.sim_synthesize_latency_s * scale}
    try:
        config = SimulatorConfig(
            latency_s=parse_latencies(latency, profile),
            latency_jitter=(settings.sim_latency_jitter if latency_jitter is None
                            else latency_jitter),
            rpm=rpm, tpm=tpm, window_s=window_s,
            fault_rates=parse_rates(fault_rate),
            fault_sequence=parse_sequence(fault_sequence),
            seed=seed, retry_after_s=retry_after_s, timeout_sleep_s=timeout_sleep_s,
            json_schema=json_schema,
        )
        err.print(f"LLM simulator on http://{host}:{port} "
                  f"(OPENAI_BASE_URL=http://{host}:{port}/v1, "
                  f"ANTHROPIC_BASE_URL=http://{host}:{port})")
        serve(config, host=host, port=port, log_level=loglevel.lower())
    except (ValueError, TaskforceError) as exc:
        fail(str(exc))
