"""``taskforce``: run goals, run batches, start the servers, ingest documents, benchmark.

``run`` and ``batch`` use the servers named by ``REDIS_URL`` and ``DATABASE_URL``; with
neither set they start an embedded Redis and PostgreSQL plus two worker processes, and
stop them all when they finish.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shared import goals, telemetry
from shared.errors import TaskforceError
from shared.settings import get_settings
from taskforce_cli import approvals, health, keys, memory, servers, sessions
from taskforce_cli.console import ConcurrencyOption, err, fail, out

app = typer.Typer(
    help="Taskforce: distributed task-queue workers for LLM agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(keys.app, name="keys")
app.add_typer(sessions.app, name="session")
app.add_typer(memory.app, name="memory")

WorkersOption = Annotated[
    Optional[int],
    typer.Option(help="Worker processes to start (default: 2 with the embedded servers, "
                      "0 with configured ones)."),
]
ProviderOption = Annotated[Optional[str], typer.Option(help="LLM provider (default: settings).")]
ModelOption = Annotated[Optional[str], typer.Option(help="Model name (default: settings).")]
ModeOption = Annotated[str, typer.Option(
    help="dag: plan once, run independent steps in parallel; react: one LLM call chooses "
         "each next action.")]


@app.command()
def run(
    goal: Annotated[str, typer.Argument(help="The goal text.")],
    provider: ProviderOption = None,
    model: ModelOption = None,
    mode: ModeOption = "dag",
    as_json: Annotated[bool, typer.Option("--json", help="Print the final goal object.")] = False,
    workers: WorkersOption = None,
    concurrency: ConcurrencyOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the goal.")] = 600.0,
    session: Annotated[Optional[str], typer.Option(
        help="Continue this session: the goal sees its earlier goals and answers.")] = None,
) -> None:
    """Submit one goal, show its DAG's progress, print the answer and its steps (a
    simulated answer and model are marked so)."""
    from shared.domain.models import GoalRequest
    from taskforce_cli.display import approval_lines, outcome_lines, steps_table
    from taskforce_cli.fleet import local_fleet
    from taskforce_cli.results import result_object

    try:
        request = GoalRequest(goal=goal, provider=provider, model=model, mode=mode,
                              session_id=session)
        with local_fleet(workers=workers, concurrency=concurrency):
            telemetry.setup("cli")  # the goal's trace starts here (when OTEL_* is set)
            goal_id = goals.submit_goal(request)
            view = _follow(goal_id, timeout=timeout, live=not as_json)
    except ValidationError as exc:
        fail(exc.errors(include_url=False)[0]["msg"])
    except TaskforceError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps(result_object(view)))
        return
    out.print(steps_table(view))
    for line in approval_lines(view) + outcome_lines(view):
        out.print(line)
    if view.status.value != "succeeded":
        raise typer.Exit(code=1)


def _follow(goal_id: uuid.UUID, *, timeout: float, live: bool):
    from taskforce_cli.display import live_view

    interval = get_settings().result_poll_interval_s
    deadline = time.monotonic() + timeout
    view = goals.get_goal(goal_id)
    display = Live(live_view(view), console=err, refresh_per_second=8, transient=True)
    if live:
        display.start()
    try:
        while not view.status.is_final and time.monotonic() < deadline:
            time.sleep(interval)
            view = goals.get_goal(goal_id)
            display.update(live_view(view))
    finally:
        if live:
            display.stop()
    return view


app.command()(approvals.approve)
app.command()(approvals.reject)
for _command in (servers.worker, servers.gateway, servers.beat, servers.flower):
    app.command()(_command)
app.command("sim-llm")(servers.sim_llm)
app.command("worker-health")(health.worker_health)


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
    from taskforce_cli.batch import read_goals, run_batch
    from taskforce_cli.display import summary_table
    from taskforce_cli.fleet import local_fleet
    from taskforce_cli.results import summarize

    try:
        items = read_goals(file, limit=limit, provider=provider, model=model)
        if not items:
            fail(f"{file} holds no goals")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = output or get_settings().data_dir / "results" / f"{file.stem}-{stamp}.jsonl"
        with local_fleet(workers=workers, concurrency=concurrency):
            telemetry.setup("cli")
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
        fail(str(exc))
    summary = summarize(results) | {"output": str(target)}
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        out.print(summary_table(summary))
        out.print(f"results: {target}")
    if summary["by_status"].get("succeeded", 0) != len(results):
        raise typer.Exit(code=1)


@app.command()
def migrate() -> None:
    """Apply database migrations (idempotent)."""
    from shared.persistence.db import migrate as run_migrations

    try:
        run_migrations()
    except TaskforceError as exc:
        fail(str(exc))
    out.print("schema is up to date")


@app.command()
def reconcile() -> None:
    """Run one reconciler pass now (beat runs it every RECONCILE_INTERVAL_S)."""
    from scheduler.reconciler import run_once

    try:
        counts = run_once().as_dict()
    except TaskforceError as exc:
        fail(str(exc))
    out.print_json(json.dumps(counts))


@app.command()
def ingest(paths: Annotated[list[Path], typer.Argument(help="Files or directories.")]) -> None:
    """Load documents for the search tool (.jsonl, .txt, .md, .rst; directories too)."""
    from shared.persistence.db import get_engine
    from shared.persistence.documents import insert_documents, read_documents
    from taskforce_cli.fleet import servers

    try:
        with servers():
            total = 0
            for path in paths:
                with get_engine().begin() as connection:
                    added = insert_documents(connection, read_documents(path))
                out.print(f"{path}: {added} new documents")
                total += added
    except TaskforceError as exc:
        fail(str(exc))
    out.print(f"{total} documents added")


@app.command()
def bench(
    name: Annotated[str, typer.Argument(
        help="Benchmark: dispatch, gateway, inflight, overhead, paper, prompt-tokens, "
             "rate-limit or scale.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    quick: Annotated[bool, typer.Option(help="A smaller, faster run (for tests).")] = False,
    plot_dir: Annotated[Optional[Path], typer.Option(
        help="Where dispatch, inflight, scale and paper write their PNG plots.")
    ] = Path("docs/benchmarks"),
    provider: Annotated[Optional[str], typer.Option(
        help="paper: LLM provider (default: settings, sim unless configured).")] = None,
    model: Annotated[Optional[str], typer.Option(help="paper: model name.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="paper: goals per set.")] = None,
) -> None:
    """Run a benchmark and print its figures."""
    from taskforce_cli import bench as benchmarks

    try:
        figures = benchmarks.run(name, quick=quick, progress=None if as_json else err,
                                 plot_dir=plot_dir, provider=provider, model=model,
                                 limit=limit)
    except TaskforceError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps(figures))
    else:
        for key, value in figures.items():
            out.print(f"{key}: {value}")


if __name__ == "__main__":
    app()
