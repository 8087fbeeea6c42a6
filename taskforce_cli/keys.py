"""``taskforce keys``: create, list and revoke the gateway's API keys.

They use the configured ``DATABASE_URL`` (with ``REDIS_URL``), or the embedded default
servers like ``ingest`` does. A key's full text is printed once, at creation; only the
SHA-256 of its secret is stored.
"""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.table import Table

from shared import auth
from shared.errors import TaskforceError
from taskforce_cli.console import err, fail, out

app = typer.Typer(help="Create, list and revoke the gateway's API keys.", no_args_is_help=True)


@app.command()
def create(
    tenant: Annotated[str, typer.Option(help="Tenant name (created if new).")],
    scope: Annotated[Optional[list[str]], typer.Option(
        help=f"Scope to grant (repeatable; one of {', '.join(auth.ALL_SCOPES)}). "
             f"Default: {', '.join(auth.DEFAULT_SCOPES)}.")] = None,
) -> None:
    """Create an API key for a tenant and print it (the only time it is shown)."""
    from taskforce_cli.fleet import servers

    try:
        with servers():
            key = auth.create_key(tenant=tenant, scopes=scope or auth.DEFAULT_SCOPES)
    except TaskforceError as exc:
        fail(str(exc))
    out.print(f"key id: {key.key_id}  tenant: {key.tenant}  scopes: {' '.join(key.scopes)}")
    out.print(key.key, soft_wrap=True, highlight=False)
    err.print("Store this key now: it will not be shown again (only its hash is kept).")


@app.command("list")
def list_(
    tenant: Annotated[Optional[str], typer.Option(help="Only this tenant's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List keys: id, tenant, scopes, created, revoked, last used (never the secret)."""
    from taskforce_cli.fleet import servers

    try:
        with servers():
            rows = auth.list_keys(tenant=tenant)
    except TaskforceError as exc:
        fail(str(exc))
    if as_json:
        for row in rows:
            out.print(json.dumps(row, default=str), soft_wrap=True, highlight=False)
        return
    table = Table()
    table.add_column("key id", no_wrap=True)
    for header in ("tenant", "scopes", "created", "revoked", "last used"):
        table.add_column(header)
    for row in rows:
        table.add_row(row["key_id"], row["tenant"], " ".join(row["scopes"]),
                      f"{row['created_at']:%Y-%m-%d %H:%M:%S}",
                      f"{row['revoked_at']:%Y-%m-%d %H:%M:%S}" if row["revoked_at"] else "-",
                      f"{row['last_used_at']:%Y-%m-%d %H:%M:%S}" if row["last_used_at"]
                      else "-")
    out.print(table)


@app.command()
def revoke(key_id: Annotated[str, typer.Argument(help="The key id (from `keys list`).")]
           ) -> None:
    """Revoke a key: the gateway refuses it (401) from the next request on."""
    from taskforce_cli.fleet import servers

    try:
        with servers():
            found = auth.revoke_key(key_id)
    except TaskforceError as exc:
        fail(str(exc))
    if not found:
        fail(f"no key with id {key_id!r}")
    out.print(f"key {key_id} revoked")


_LIMIT_OPTIONS = {"goals-per-minute": "goals_per_minute", "max-in-flight": "max_goals_in_flight",
                  "daily-usd": "daily_usd", "max-tokens": "max_tokens_per_goal",
                  "max-cost-usd": "max_cost_usd_per_goal", "models": "allowed_models"}


@app.command()
def tenant(
    name: Annotated[str, typer.Argument(help="The tenant's name.")],
    goals_per_minute: Annotated[Optional[int], typer.Option(
        help="Goals it may submit per minute (429 beyond).")] = None,
    max_in_flight: Annotated[Optional[int], typer.Option(
        help="Goals it may have not ended at once (429 beyond).")] = None,
    daily_usd: Annotated[Optional[float], typer.Option(
        help="USD its LLM calls may cost per UTC day (then budget_exceeded).")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(
        help="Cap of a goal's max_tokens.")] = None,
    max_cost_usd: Annotated[Optional[float], typer.Option(
        help="Cap of a goal's max_cost_usd (USD).")] = None,
    models: Annotated[Optional[str], typer.Option(
        help="Models it may use: provider:model patterns, comma-separated (sim:*,...).")
    ] = None,
    default: Annotated[Optional[list[str]], typer.Option(
        help=f"Put a limit back to the global setting (repeatable; one of "
             f"{', '.join(_LIMIT_OPTIONS)}).")] = None,
) -> None:
    """Show or set a tenant's quotas and ceilings (unset ones follow the settings)."""
    from shared import quotas
    from taskforce_cli.fleet import servers

    given = {"goals_per_minute": goals_per_minute, "max_goals_in_flight": max_in_flight,
             "daily_usd": daily_usd, "max_tokens_per_goal": max_tokens,
             "max_cost_usd_per_goal": max_cost_usd, "allowed_models": models}
    values = {column: value for column, value in given.items() if value is not None}
    for option in default or ():
        if option not in _LIMIT_OPTIONS:
            fail(f"--default: one of {', '.join(_LIMIT_OPTIONS)}")
        values[_LIMIT_OPTIONS[option]] = None
    try:
        with servers():
            row = quotas.set_tenant_limits(name, values)
    except TaskforceError as exc:
        fail(str(exc))
    for option, column in _LIMIT_OPTIONS.items():
        value = row[column]
        out.print(f"{option}: {'(setting)' if value is None else value}", highlight=False)
