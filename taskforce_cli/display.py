"""Terminal rendering for the CLI (rich): a goal's DAG as a table, a batch summary, the
lines that end ``taskforce run`` (answer, model, totals), simulated ones marked, and how
to approve the steps that await approval."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table

from shared.domain.models import Goal
from shared.settings import get_settings
from taskforce_cli.results import model_label

STATUS_STYLE = {
    "pending": "dim",
    "queued": "cyan",
    "running": "yellow",
    "succeeded": "green",
    "failed": "red",
    "skipped": "dim",
    "awaiting_approval": "bold magenta",
}


def steps_table(view: Goal) -> Table:
    """One row per step: id, kind, tool, dependencies, status, seconds taken."""
    table = Table(title=f"goal {view.id} - {view.status.value}", title_justify="left")
    for column in ("step", "kind", "tool", "needs", "status", "seconds"):
        table.add_column(column)
    for step in view.steps:
        seconds = ""
        if step.started_at and step.finished_at:
            seconds = f"{(step.finished_at - step.started_at).total_seconds():.2f}"
        style = STATUS_STYLE.get(step.status.value, "")
        table.add_row(
            str(step.id),
            step.kind.value,
            step.tool or "",
            ",".join(str(d) for d in step.dependencies) or "-",
            f"[{style}]{step.status.value}[/{style}]" if style else step.status.value,
            seconds,
        )
    return table


def approval_lines(view: Goal) -> list[str]:
    """Rich markup lines for each step awaiting approval: the CLI command and the HTTP
    request (to the configured gateway) that approve it; ``reject`` takes the same
    arguments and ``--reason``."""
    settings = get_settings()
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    lines = []
    for step_id in view.awaiting_approval:
        lines.append(
            f"[bold magenta]step {step_id} awaits approval:[/bold magenta] "
            f"taskforce approve {view.id} {step_id}  (or taskforce reject {view.id} "
            f"{step_id} --reason ...; or curl -X POST "
            f"{base}/v1/goals/{view.id}/steps/{step_id}/approve)")
    return lines


def live_view(view: Goal) -> Table | Group:
    """What ``taskforce run`` shows while it waits: the steps table, followed by how to
    approve any step awaiting approval."""
    table = steps_table(view)
    lines = approval_lines(view)
    return Group(table, *lines) if lines else table


def summary_table(summary: dict[str, Any]) -> Table:
    """The batch summary as a two-column table; a model whose answers were simulated is
    marked ``(simulated)``."""
    table = Table(title="batch summary", title_justify="left", show_header=False)
    table.add_column("measure")
    table.add_column("value")
    table.add_row("goals", str(summary["goals"]))
    for status, count in summary["by_status"].items():
        table.add_row(f"  {status}", str(count))
    for name, counts in summary.get("models", {}).items():
        mark = ("" if not counts["simulated"] else " (simulated)"
                if counts["simulated"] == counts["goals"]
                else f" ({counts['simulated']} of {counts['goals']} simulated)")
        table.add_row("model", escape(name + mark))
    for key, label in (("latency_p50_s", "latency p50 (s)"), ("latency_p95_s", "latency p95 (s)")):
        value = summary[key]
        table.add_row(label, "-" if value is None else f"{value:.2f}")
    table.add_row("tokens", f"{summary['tokens']:,}")
    table.add_row("cost (USD)", f"{summary['cost_usd']:.6f}")
    return table


def outcome_lines(view: Goal) -> list[str]:
    """Rich markup lines after a goal's table: ``answer [simulated]: ...`` (the mark only
    when no real model answered), the error, ``model: sim/sim-planner-1 (simulated)``,
    then tokens and cost (USD)."""
    lines = []
    if view.answer is not None:
        mark = escape(" [simulated]") if view.simulated else ""
        lines.append(f"[bold]answer{mark}:[/bold] {escape(view.answer)}")
    if view.error:
        lines.append(f"[red]error:[/red] {escape(view.error)}")
    lines.append(f"model: {escape(model_label(view.provider, view.model, view.simulated))}")
    lines.append(f"tokens: {view.tokens:,}  cost: ${view.cost_usd:.6f}")
    if view.session_id:
        lines.append(f"session: {escape(view.session_id)}")
    if view.reused_plan_from:
        lines.append(f"plan reused from goal {view.reused_plan_from} (no planning call)")
    return lines
