"""``taskforce memory``: long-term memory from the command line.

``taskforce memory cleanup [--dry-run] [--json]`` runs one cleanup pass here (the same
pass beat schedules nightly) on the configured servers, or the embedded default ones;
``--dry-run`` shows what a pass would do and changes nothing. ``remember`` and
``recall`` write and search the memory of a tenant (``default`` unless ``--tenant``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from shared.errors import TaskforceError
from taskforce_cli.console import fail, out

app = typer.Typer(help="Long-term memory: clean up, remember, recall.", no_args_is_help=True)


def _tenant_id(name: str | None) -> Any:
    from shared.persistence.db import get_engine
    from shared.persistence.keys import DEFAULT_TENANT_ID, ensure_tenant

    if name is None:
        return DEFAULT_TENANT_ID
    with get_engine().begin() as connection:
        return ensure_tenant(connection, name=name)


@app.command()
def cleanup(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what a pass would do; "
                                          "change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the pass as JSON.")] = False,
) -> None:
    """Run one memory cleanup pass: expired items, duplicates, retention, caps."""
    from shared.memory.cleanup import run_cleanup
    from taskforce_cli.fleet import servers

    try:
        with servers():
            result = run_cleanup(dry_run=dry_run)
    except TaskforceError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps(result))
        return
    title = "memory cleanup (dry run: nothing changed)" if dry_run else "memory cleanup"
    table = Table("phase", "counts", "seconds", title=title)
    for name, phase in result["phases"].items():
        counts = ", ".join(f"{k} {v}" for k, v in phase["counts"].items())
        table.add_row(name, counts, f"{phase['seconds']:.3f}")
    out.print(table)
    out.print(f"{result['seconds']:.3f} s, {result['statements']} transactions, longest "
              f"{result['max_statement_ms']:.1f} ms (run {result['run_id']})")


@app.command()
def remember(
    content: Annotated[str, typer.Argument(help="The fact.")],
    namespace: Annotated[str, typer.Option(help="Namespace.")] = "default",
    ttl_s: Annotated[Optional[float], typer.Option(help="Seconds until it expires.")] = None,
    tenant: Annotated[Optional[str], typer.Option(help="Tenant name (default: default).")
                      ] = None,
) -> None:
    """Remember a fact for a tenant; prints the item as JSON."""
    from shared.memory import store as memory
    from taskforce_cli.fleet import servers

    try:
        with servers():
            done = memory.remember(
                memory.MemoryWrite(namespace=namespace, content=content, ttl_s=ttl_s),
                tenant_id=_tenant_id(tenant), source="cli")
    except (TaskforceError, ValueError) as exc:
        fail(str(exc))
    out.print_json(done.model_dump_json())


@app.command()
def recall(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    namespace: Annotated[Optional[str], typer.Option(help="Only this namespace.")] = None,
    limit: Annotated[int, typer.Option(help="Most facts (1 to 20).")] = 5,
    tenant: Annotated[Optional[str], typer.Option(help="Tenant name (default: default).")
                      ] = None,
) -> None:
    """Recall a tenant's facts best matching QUERY; prints the answer as JSON."""
    from shared.memory import store as memory
    from taskforce_cli.fleet import servers

    try:
        with servers():
            found = memory.recall(tenant_id=_tenant_id(tenant), query=query,
                                  namespace=namespace, limit=limit)
    except TaskforceError as exc:
        fail(str(exc))
    out.print_json(found.model_dump_json())
