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
