"""Long-term memory items in SQL: add (de-duplicated), supersede, read, delete, count.

Every function takes an open ``Connection`` and commits nothing itself; every statement
is scoped by tenant, so another tenant's item is as absent as an unknown one. An item is
*live* while it is neither superseded (``valid_to IS NULL``) nor expired
(``expires_at`` unset or in the future); expired rows are deleted by cleanup
(:mod:`shared.persistence.memory_cleanup`) and skipped by every read until then.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from shared.persistence.memory_tables import LIVE, memory_items, memory_usage
from shared.persistence.tables import tenants

ITEM_COLUMNS = (memory_items.c.id, memory_items.c.namespace, memory_items.c.content,
                memory_items.c.source, memory_items.c.created_at, memory_items.c.valid_to,
                memory_items.c.superseded_by, memory_items.c.expires_at,
                memory_items.c.embedding_model, memory_items.c.embedding_simulated)
# The longer of two expiries, where none (NULL) is the longest; raw SQL because it names
# the ON CONFLICT clause's ``excluded`` row, which Core exposes only as columns.
_LONGER_TTL = literal_column(
    "CASE WHEN memory_items.expires_at IS NULL OR excluded.expires_at IS NULL "
    "THEN NULL::timestamptz ELSE greatest(memory_items.expires_at, excluded.expires_at) END")
_LOCK_CLASS = 72072  # pg_advisory_xact_lock(class, key): memory writes of one tenant


def not_expired() -> ColumnElement[bool]:
    """The item has no TTL or it has not passed."""
    return or_(memory_items.c.expires_at.is_(None), memory_items.c.expires_at > func.now())


@dataclass(frozen=True)
class Added:
    """Outcome of :func:`add_item`: the live item's id, and False when an item of the
    same content already was live (nothing new was stored; its TTL was extended)."""

    id: uuid.UUID
    created: bool


def lock_tenant(connection: Connection, *, tenant_id: uuid.UUID) -> None:
    """Serialise this transaction's memory writes with the tenant's others (a
    transaction-scoped advisory lock), so quota checks and inserts are one step. Locks no
    row: goal submissions of the tenant are not held up."""
    connection.execute(select(func.pg_advisory_xact_lock(
        _LOCK_CLASS, func.hashtext(str(tenant_id)))))


def usage(connection: Connection, *, tenant_id: uuid.UUID, namespace: str) -> tuple[int, int]:
    """Items the tenant holds in all namespaces, and in ``namespace`` (history included),
    from the trigger-maintained ``memory_usage`` counters (no row is counted)."""
    row = connection.execute(
        select(func.coalesce(func.sum(memory_usage.c["items"]), 0),
               func.coalesce(func.sum(memory_usage.c["items"]).filter(
                   memory_usage.c.namespace == namespace), 0))
        .where(memory_usage.c.tenant_id == tenant_id)).one()
    return int(row[0]), int(row[1])


def is_live(connection: Connection, *, tenant_id: uuid.UUID, namespace: str,
            content_sha256: str) -> bool:
    """True when this content is live in the namespace already (a repeat adds no row)."""
    return connection.execute(
        select(memory_items.c.id).where(
            memory_items.c.tenant_id == tenant_id, memory_items.c.namespace == namespace,
            memory_items.c.content_sha256 == content_sha256,
            memory_items.c.valid_to.is_(None))).first() is not None


def tenant_item_cap(connection: Connection, *, tenant_id: uuid.UUID) -> int | None:
    """The tenant's own ``memory_max_items`` (None: the setting applies)."""
    return connection.execute(select(tenants.c.memory_max_items)
                              .where(tenants.c.id == tenant_id)).scalar()


def add_item(connection: Connection, *, tenant_id: uuid.UUID, namespace: str, content: str,
             content_sha256: str, norm_sha256: str, source: str, ttl_s: float | None,
             embedding_model: str | None, embedding_simulated: bool) -> Added:
    """Insert a fact, or find the live one with the same content.

    One statement (``INSERT .. ON CONFLICT`` on the unique index of live content hashes),
    so two writers of the same fact at once store it once. A repeated fact keeps its id
    and history; its TTL becomes the longer of the two (none beats any).

    Args:
        ttl_s: Seconds until the item expires (None: never).
    """
    expires = (func.now() + func.make_interval(0, 0, 0, 0, 0, 0, ttl_s)
               if ttl_s is not None else None)
    statement = pg_insert(memory_items).values(
        tenant_id=tenant_id, namespace=namespace, content=content,
        content_sha256=content_sha256, norm_sha256=norm_sha256, source=source,
        expires_at=expires, embedding_model=embedding_model,
        embedding_simulated=embedding_simulated)
    statement = statement.on_conflict_do_update(
        index_elements=["tenant_id", "namespace", "content_sha256"],
        index_where=text(LIVE),
        set_={"expires_at": _LONGER_TTL},
    ).returning(memory_items.c.id, literal_column("xmax = 0").label("inserted"))
    row = connection.execute(statement).one()
    return Added(id=row.id, created=bool(row.inserted))


def supersede(connection: Connection, *, tenant_id: uuid.UUID, old_id: uuid.UUID,
              new_id: uuid.UUID) -> str:
    """Mark the tenant's item ``old_id`` superseded by ``new_id`` (``valid_to = now()``);
    the row stays, as history, until retention purges it.

    Returns:
        ``"superseded"``; ``"missing"`` when the tenant has no such live-by-TTL item;
        ``"already"`` when it was superseded before; ``"same"`` when both ids are one.
    """
    if old_id == new_id:
        return "same"
    done = connection.execute(
        update(memory_items)
        .where(memory_items.c.id == old_id, memory_items.c.tenant_id == tenant_id,
               memory_items.c.valid_to.is_(None), not_expired())
        .values(valid_to=func.now(), superseded_by=new_id, checked_at=None)
    ).rowcount
    if done:
        return "superseded"
    exists = connection.execute(
        select(memory_items.c.valid_to).where(memory_items.c.id == old_id,
                                              memory_items.c.tenant_id == tenant_id,
                                              not_expired())).first()
    return "missing" if exists is None else "already"


def get_item(connection: Connection, *, tenant_id: uuid.UUID,
             item_id: uuid.UUID) -> dict[str, Any] | None:
    """The tenant's item (live or superseded, not expired), or None."""
    row = connection.execute(
        select(*ITEM_COLUMNS).where(memory_items.c.id == item_id,
                                    memory_items.c.tenant_id == tenant_id, not_expired())
    ).mappings().first()
    return dict(row) if row else None


def delete_item(connection: Connection, *, tenant_id: uuid.UUID, item_id: uuid.UUID) -> bool:
    """Delete the tenant's item for good (its embedding goes with it). False if the
    tenant had no such item or it had expired (then it is as good as gone)."""
    deleted = connection.execute(
        delete(memory_items).where(memory_items.c.id == item_id,
                                   memory_items.c.tenant_id == tenant_id)
        .returning(not_expired())
    ).scalar()
    return bool(deleted)


def newest_items(connection: Connection, *, tenant_id: uuid.UUID, namespace: str,
                 limit: int, before: datetime | None = None) -> list[dict[str, Any]]:
    """The namespace's live items, newest first (``ix_memory_items_tenant_ns_created``),
    at most ``limit``, created before ``before`` when given (keyset paging)."""
    query = (select(*ITEM_COLUMNS)
             .where(memory_items.c.tenant_id == tenant_id,
                    memory_items.c.namespace == namespace,
                    memory_items.c.valid_to.is_(None), not_expired())
             .order_by(memory_items.c.created_at.desc(), memory_items.c.id)
             .limit(limit))
    if before is not None:
        query = query.where(memory_items.c.created_at < before)
    return [dict(row) for row in connection.execute(query).mappings()]


def add_many(connection: Connection, rows: list[dict[str, Any]]) -> list[uuid.UUID]:
    """Insert many items at once (``tenant_id``, ``namespace``, ``content``,
    ``content_sha256``, ``norm_sha256``, ``source`` and optionally ``expires_at``,
    ``embedding_model``, ``embedding_simulated``), without de-duplication or quota checks:
    for loading benchmarks and imports that checked them already. Returns the new ids."""
    if not rows:
        return []
    return list(connection.execute(
        pg_insert(memory_items).values(rows).returning(memory_items.c.id)).scalars())


def expire_namespace(connection: Connection, *, tenant_id: uuid.UUID, namespace: str) -> int:
    """Set every item of the namespace expired a second ago (benchmarks of cleanup)."""
    return connection.execute(
        update(memory_items).where(memory_items.c.tenant_id == tenant_id,
                                   memory_items.c.namespace == namespace)
        .values(expires_at=func.now() - text("interval '1 second'"))).rowcount


def count_items(connection: Connection, *, tenant_id: uuid.UUID) -> int:
    """The tenant's stored items, from the ``memory_usage`` counters."""
    return int(connection.execute(
        select(func.coalesce(func.sum(memory_usage.c["items"]), 0))
        .where(memory_usage.c.tenant_id == tenant_id)).scalar_one())


def analyze(connection: Connection) -> None:
    """Refresh the planner's statistics of the memory tables (after a bulk load)."""
    connection.execute(text("ANALYZE memory_items"))
    connection.execute(text("ANALYZE memory_usage"))
