"""``taskforce``: run goals, run batches, start the servers, ingest documents, benchmark.

``run`` and ``batch`` use the servers named by ``REDIS_URL`` and ``DATABASE_URL``; with
neither set they start an embedded Redis and PostgreSQL plus two worker processes, and
stop them all when they finish.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shared import constants, service
from shared.config import get_settings
from shared.errors import TaskforceError

app = typer.Typer(
    help="Taskforce: distributed task-queue workers for LLM agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

WorkersOption = Annotated[
    Optional[int],
    typer.Option(help="Worker processes to start (default: 2 with the embedded servers, "
                      "0 with configured ones)."),
]
ConcurrencyOption = Annotated[
    Optional[int],
    typer.Option(help="Threads per started worker process (default: WORKER_CONCURRENCY)."),
]
ProviderOption = Annotated[Optional[str], typer.Option(help="LLM provider (default: settings).")]
ModelOption = Annotated[Optional[str], typer.Option(help="Model name (default: settings).")]


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=2)


@app.command()
def run(
    goal: Annotated[str, typer.Argument(help="The goal text.")],
    provider: ProviderOption = None,
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final goal object.")] = False,
    workers: WorkersOption = None,
    concurrency: ConcurrencyOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the goal.")] = 600.0,
) -> None:
    """Submit one goal, show its DAG's progress, print the answer and its steps."""
    from shared.cli.display import steps_table
    from shared.cli.fleet import local_fleet
    from shared.cli.results import result_object
    from shared.domain.models import GoalRequest

    try:
        request = GoalRequest(goal=goal, provider=provider, model=model)
        with local_fleet(workers=workers, concurrency=concurrency):
            goal_id = service.submit_goal(request)
            view = _follow(goal_id, timeout=timeout, live=not as_json)
    except TaskforceError as exc:
        _fail(str(exc))
    if as_json:
        out.print_json(json.dumps(result_object(view)))
        return
    out.print(steps_table(view))
    if view.answer is not None:
        out.print(f"[bold]answer:[/bold] {view.answer}")
    if view.error:
        out.print(f"[red]error:[/red] {view.error}")
    out.print(f"tokens: {view.tokens:,}  cost: ${view.cost_usd:.6f}")
    if view.status.value != "succeeded":
        raise typer.Exit(code=1)


def _follow(goal_id: uuid.UUID, *, timeout: float, live: bool):
    from shared.cli.display import steps_table

    interval = get_settings().result_poll_interval_s
    deadline = time.monotonic() + timeout
    view = service.get_goal(goal_id)
    display = Live(steps_table(view), console=err, refresh_per_second=8, transient=True)
    if live:
        display.start()
    try:
        while not view.status.is_final and time.monotonic() < deadline:
            time.sleep(interval)
            view = service.get_goal(goal_id)
            display.update(steps_table(view))
    finally:
        if live:
            display.stop()
    return view


@app.command()
def batch(
    file: Annotated[Path, typer.Argument(help="Goals file: JSONL with 'id' and 'goal'.")],
    limit: Annotated[Optional[int], typer.Option(help="Run only the first N goals.")] = None,
    output: Annotated[
        Optional[Path],
        typer.Option(help="Results file (default: DATA_DIR/results/<file>-<time>.jsonl)."),
    ] = None,
    provider: ProviderOption = None,
    model: ModelOption = None,
    workers: WorkersOption = None,
    concurrency: ConcurrencyOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the whole batch.")] = 3600.0,
    max_in_flight: Annotated[int, typer.Option(
        min=1, help="Most goals running at once; the next is submitted when one ends.")] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run a file of goals; write one result per goal and print a summary."""
    from shared.cli.batch import read_goals, run_batch
    from shared.cli.display import summary_table
    from shared.cli.fleet import local_fleet
    from shared.cli.results import summarize

    try:
        items = read_goals(file, limit=limit, provider=provider, model=model)
        if not items:
            _fail(f"{file} holds no goals")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = output or get_settings().data_dir / "results" / f"{file.stem}-{stamp}.jsonl"
        with local_fleet(workers=workers, concurrency=concurrency):
            progress = Progress(
                TextColumn("[bold]goals"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=err,
            )
            counts: dict[str, int] = {}
            with progress:
                task = progress.add_task("goals", total=len(items), detail="")

                def advance(status: str) -> None:
                    counts[status] = counts.get(status, 0) + 1
                    detail = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
                    progress.update(task, advance=1, detail=detail)

                results = run_batch(items, output=target, timeout_s=timeout,
                                    max_in_flight=max_in_flight, advance=advance)
    except TaskforceError as exc:
        _fail(str(exc))
    summary = summarize(results) | {"output": str(target)}
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        out.print(summary_table(summary))
        out.print(f"results: {target}")
    if summary["by_status"].get("succeeded", 0) != len(results):
        raise typer.Exit(code=1)


@app.command()
def worker(
    concurrency: ConcurrencyOption = None,
    pool: Annotated[Optional[str], typer.Option(help="threads or gevent (default: WORKER_POOL).")] = None,
    queues: Annotated[str, typer.Option(help="Queues to consume, comma-separated.")] = (
        f"{constants.STEPS_QUEUE},{constants.MAINTENANCE_QUEUE}"
    ),
    name: Annotated[Optional[str], typer.Option(help="Worker name (before '@host').")] = None,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    supervise: Annotated[bool, typer.Option(
        help="Run Celery in a child process, restarted with backoff if it fails "
             "(--no-supervise: in this process).")] = True,
) -> None:
    """Start a worker process that plans goals and runs steps."""
    from shared.celery_app import app as celery
    from shared.cli import supervise as supervisor

    settings = get_settings()
    if not settings.redis_url or not settings.database_url:
        _fail("a worker needs REDIS_URL and DATABASE_URL")
    if supervise:
        options = [f"--queues={queues}", f"--loglevel={loglevel}"]
        options += [f"--concurrency={concurrency}"] if concurrency else []
        options += [f"--pool={pool}"] if pool else []
        options += [f"--name={name}"] if name else []
        module = __spec__.name if __spec__ else "shared.cli.main"
        raise typer.Exit(supervisor.supervise(supervisor.worker_command(module, options)))
    argv = [
        "worker",
        f"--pool={pool or settings.worker_pool}",
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


@app.command()
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
    if not settings.redis_url or not settings.database_url:
        _fail("the gateway needs REDIS_URL and DATABASE_URL")
    if migrate_first:
        migrate()
    uvicorn.run("api_gateway.app:app", host=host or settings.gateway_host,
                port=port or settings.gateway_port)


@app.command()
def beat(loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO") -> None:
    """Start the beat scheduler (one per deployment) for the maintenance jobs."""
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "scheduler.beat:app",
                               "beat", f"--loglevel={loglevel}",
                               f"--schedule={get_settings().data_dir / 'celerybeat-schedule'}"])


@app.command()
def flower(port: Annotated[int, typer.Option(help="Port.")] = 5555) -> None:
    """Start Flower, the Celery monitoring UI, for this deployment's broker."""
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "shared.celery_app:app",
                               "flower", f"--port={port}"])


@app.command()
def migrate() -> None:
    """Apply database migrations (idempotent)."""
    from shared.persistence.db import migrate as run_migrations

    try:
        run_migrations()
    except TaskforceError as exc:
        _fail(str(exc))
    out.print("schema is up to date")


@app.command()
def reconcile() -> None:
    """Run one reconciler pass now (beat runs it every RECONCILE_INTERVAL_S)."""
    from shared.reconciler import run_once

    try:
        counts = run_once().as_dict()
    except TaskforceError as exc:
        _fail(str(exc))
    out.print_json(json.dumps(counts))


@app.command()
def ingest(paths: Annotated[list[Path], typer.Argument(help="Files or directories.")]) -> None:
    """Load documents for the search tool (.jsonl, .txt, .md, .rst; directories too)."""
    from shared.cli.fleet import servers
    from shared.persistence.db import get_engine
    from shared.persistence.documents import insert_documents, read_documents

    try:
        with servers():
            total = 0
            for path in paths:
                with get_engine().begin() as connection:
                    added = insert_documents(connection, read_documents(path))
                out.print(f"{path}: {added} new documents")
                total += added
    except TaskforceError as exc:
        _fail(str(exc))
    out.print(f"{total} documents added")


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help="Benchmark: overhead or rate-limit.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    quick: Annotated[bool, typer.Option(help="A smaller, faster run (for tests).")] = False,
) -> None:
    """Run a benchmark and print its figures."""
    from shared.cli import bench as benchmarks

    try:
        figures = benchmarks.run(name, quick=quick, progress=None if as_json else err)
    except TaskforceError as exc:
        _fail(str(exc))
    if as_json:
        out.print_json(json.dumps(figures))
    else:
        for key, value in figures.items():
            out.print(f"{key}: {value}")


@app.command("sim-llm")
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
    from shared.llm.simulator.config import SimulatorConfig, parse_latencies
    from shared.llm.simulator.faults import parse_rates, parse_sequence
    from shared.llm.simulator.server import serve

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
        _fail(str(exc))


if __name__ == "__main__":
    app()
