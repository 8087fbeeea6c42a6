"""Tenants and API keys in SQL.

Every function takes an open ``Connection`` (inside ``engine.begin()`` for writes) and
commits nothing itself. Only the SHA-256 of a key's secret is stored, never the secret;
the secret's hash is never returned by the listing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from shared.persistence.tables import api_keys, tenants

# The tenant created by migration 0005: owner of the goals submitted while authentication
# is off, and by the CLI (which acts for the operator).
DEFAULT_TENANT_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")
DEFAULT_TENANT_NAME = "default"

# How often (seconds) a key's ``last_used_at`` is rewritten at most: one write per key per
# minute instead of one per request.
LAST_USED_RESOLUTION_S = 60


def ensure_tenant(connection: Connection, *, name: str) -> uuid.UUID:
    """The id of the tenant called ``name``, created if there is none (race-free)."""
    inserted = connection.execute(
        pg_insert(tenants).values(id=uuid.uuid4(), name=name)
        .on_conflict_do_nothing(constraint="uq_tenants_name").returning(tenants.c.id)
    ).scalar()
    if inserted is not None:
        return inserted
    return connection.execute(select(tenants.c.id).where(tenants.c.name == name)).scalar_one()


def insert_key(
    connection: Connection, *, key_id: str, tenant_id: uuid.UUID, secret_sha256: str,
    scopes: Sequence[str],
) -> None:
    """Store a new key: its public id, its tenant, the SHA-256 (hex) of its secret and
    its scopes."""
    connection.execute(api_keys.insert().values(
        key_id=key_id, tenant_id=tenant_id, secret_sha256=secret_sha256, scopes=list(scopes),
    ))


def find_key(connection: Connection, *, key_id: str) -> dict[str, Any] | None:
    """The key ``key_id`` with its tenant's name (keys ``key_id``, ``tenant_id``,
    ``tenant_name``, ``secret_sha256``, ``scopes``, ``revoked_at``), or None."""
    row = connection.execute(
        select(api_keys.c.key_id, api_keys.c.tenant_id, tenants.c.name.label("tenant_name"),
               api_keys.c.secret_sha256, api_keys.c.scopes, api_keys.c.revoked_at)
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .where(api_keys.c.key_id == key_id)
    ).mappings().first()
    return dict(row) if row else None


def mark_used(connection: Connection, *, key_id: str) -> None:
    """Set the key's ``last_used_at`` to now, unless it was set in the last minute."""
    stale = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, LAST_USED_RESOLUTION_S)
    connection.execute(
        update(api_keys)
        .where(api_keys.c.key_id == key_id,
               or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < stale))
        .values(last_used_at=func.now())
    )


def list_keys(connection: Connection, *, tenant: str | None = None) -> list[dict[str, Any]]:
    """Every key (of ``tenant`` only, if given), oldest first: ``key_id``, ``tenant``,
    ``scopes``, ``created_at``, ``revoked_at``, ``last_used_at``; never the hash."""
    query = (
        select(api_keys.c.key_id, tenants.c.name.label("tenant"), api_keys.c.scopes,
               api_keys.c.created_at, api_keys.c.revoked_at, api_keys.c.last_used_at)
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .order_by(api_keys.c.created_at, api_keys.c.key_id)
    )
    if tenant is not None:
        query = query.where(tenants.c.name == tenant)
    return [dict(row) for row in connection.execute(query).mappings()]


def revoke_key(connection: Connection, *, key_id: str) -> datetime | None:
    """Revoke the key (idempotent). Returns when it was revoked, or None if no key has
    this id."""
    connection.execute(
        update(api_keys).where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return connection.execute(
        select(api_keys.c.revoked_at).where(api_keys.c.key_id == key_id)
    ).scalar()
