"""The statements of memory cleanup, each bounded to one batch of rows.

Every batch picks its rows through an index (``ix_memory_items_expires``,
``ix_memory_items_superseded``, ``ix_memory_items_unchecked``) with ``ORDER BY .. LIMIT n
FOR UPDATE SKIP LOCKED``: it locks at most ``n`` rows, never a tenant, skips rows a
writer holds (the next pass gets them), and never lists a tenant's items. Each function
is one short transaction's work; the caller commits after each batch. The ``count_*``
functions answer a dry run with the same conditions, without changing anything.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from shared.persistence.memory_tables import memory_items, memory_usage
from shared.persistence.tables import goals, step_runs

m = memory_items


def _expired():
    return and_(m.c.expires_at.is_not(None), m.c.expires_at <= func.now())


def _past_retention(days: float):
    return and_(m.c.valid_to.is_not(None), m.c.valid_to < func.now() - timedelta(days=days))


def _picked(query):
    """The locked batch as a materialised CTE: computed once, before the DELETE joins it
    (as a plain ``IN (subquery)`` the planner may re-run the locking subquery per row)."""
    return query.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")


def _delete_picked(connection: Connection, picked) -> int:
    """Delete exactly the picked rows, joined by primary key. No condition is repeated
    here: ``FOR UPDATE`` re-evaluated the batch's condition on each row's latest version
    when it locked it (a TTL extended meanwhile drops the row from the batch), and the
    lock holds until the commit. (Repeating a condition here also misleads the planner
    after a bulk change: it joined through the expiry index, quadratically.)"""
    return connection.execute(delete(m).where(m.c.id == picked.c.id)).rowcount


def delete_expired(connection: Connection, *, batch: int) -> int:
    """Delete up to ``batch`` expired items (their embeddings go by cascade), oldest
    expiry first. Returns how many went."""
    picked = _picked(select(m.c.id).where(_expired()).order_by(m.c.expires_at).limit(batch))
    return _delete_picked(connection, picked)


def count_expired(connection: Connection) -> int:
    """Items whose TTL has passed (through the partial index on ``expires_at``)."""
    return connection.execute(select(func.count()).where(_expired())).scalar_one()


def purge_superseded(connection: Connection, *, batch: int, days: float) -> int:
    """Delete up to ``batch`` items superseded more than ``days`` days ago."""
    picked = _picked(select(m.c.id).where(_past_retention(days)).order_by(m.c.valid_to)
                     .limit(batch))
    return _delete_picked(connection, picked)


def count_superseded_past(connection: Connection, *, days: float) -> int:
    """Items superseded more than ``days`` days ago."""
    return connection.execute(select(func.count()).where(_past_retention(days))).scalar_one()


def lock_unchecked(connection: Connection, *, batch: int) -> list[uuid.UUID]:
    """Lock up to ``batch`` items that the duplicate check has not seen yet (new ones,
    and ones superseded since), oldest first; return their ids."""
    return list(connection.execute(
        select(m.c.id).where(m.c.checked_at.is_(None)).order_by(m.c.created_at).limit(batch)
        .with_for_update(skip_locked=True)).scalars())


def _exact_copies(ids: list[uuid.UUID]):
    """Superseded items among ``ids`` whose exact content is live again."""
    live = aliased(m)
    return and_(m.c.id.in_(ids), m.c.valid_to.is_not(None), exists().where(
        live.c.tenant_id == m.c.tenant_id, live.c.namespace == m.c.namespace,
        live.c.content_sha256 == m.c.content_sha256, live.c.valid_to.is_(None)))


def _near_pairs(ids: list[uuid.UUID]):
    """(older, newer): live items with the same normalised content as a newer live item
    among ``ids``, in the same tenant and namespace (through ``ix_memory_items_norm``)."""
    newer = aliased(m)
    return newer, and_(
        newer.c.id.in_(ids), newer.c.valid_to.is_(None), m.c.valid_to.is_(None),
        m.c.tenant_id == newer.c.tenant_id, m.c.namespace == newer.c.namespace,
        m.c.norm_sha256 == newer.c.norm_sha256, m.c.id != newer.c.id,
        (m.c.created_at < newer.c.created_at) | and_(m.c.created_at == newer.c.created_at,
                                                     m.c.id < newer.c.id))


def dedupe(connection: Connection, *, ids: list[uuid.UUID]) -> tuple[int, int]:
    """For the locked items ``ids``: delete superseded ones whose exact content is live
    again (an exact duplicate adds nothing), mark older live near-duplicates (same
    normalised text) superseded by the newer one, then mark ``ids`` checked.

    Returns:
        (exact duplicates deleted, near-duplicates superseded).
    """
    exact = connection.execute(delete(m).where(_exact_copies(ids))).rowcount
    newer, pairs = _near_pairs(ids)
    near = connection.execute(
        update(m).where(pairs).values(valid_to=func.now(), superseded_by=newer.c.id)
    ).rowcount
    connection.execute(update(m).where(m.c.id.in_(ids)).values(checked_at=func.now()))
    return exact, near


def count_duplicates(connection: Connection) -> tuple[int, int]:
    """What :func:`dedupe` would do to every unchecked item: (exact, near)."""
    unchecked = select(m.c.id).where(m.c.checked_at.is_(None)).scalar_subquery()
    exact = connection.execute(select(func.count()).where(
        _exact_copies(unchecked))).scalar_one()
    newer, pairs = _near_pairs(unchecked)
    near = connection.execute(select(func.count(func.distinct(m.c.id))).select_from(m)
                              .join(newer, pairs)).scalar_one()
    return exact, near


def namespaces_over(connection: Connection, *, cap: int, limit: int
                    ) -> list[tuple[uuid.UUID, str, int]]:
    """Up to ``limit`` (tenant, namespace, items) whose item count passes ``cap``, from
    the ``memory_usage`` counters (one row per namespace, no item is read)."""
    rows = connection.execute(
        select(memory_usage.c.tenant_id, memory_usage.c.namespace, memory_usage.c["items"])
        .where(memory_usage.c["items"] > cap).order_by(memory_usage.c["items"].desc())
        .limit(limit)).all()
    return [(row[0], row[1], int(row[2])) for row in rows]


def trim_history(connection: Connection, *, tenant_id: uuid.UUID, namespace: str,
                 batch: int) -> int:
    """Delete up to ``batch`` of the namespace's superseded items, oldest first. Live
    items are never touched."""
    where = and_(m.c.tenant_id == tenant_id, m.c.namespace == namespace,
                 m.c.valid_to.is_not(None))
    picked = _picked(select(m.c.id).where(where).order_by(m.c.valid_to).limit(batch))
    return _delete_picked(connection, picked)


def count_history(connection: Connection, *, tenant_id: uuid.UUID, namespace: str) -> int:
    """The namespace's superseded items."""
    return connection.execute(select(func.count()).where(
        m.c.tenant_id == tenant_id, m.c.namespace == namespace,
        m.c.valid_to.is_not(None))).scalar_one()


def _finished_before(days: float):
    return goals.c.finished_at < func.now() - timedelta(days=days)


def purge_goals(connection: Connection, *, batch: int, days: float) -> int:
    """Delete up to ``batch`` goals finished more than ``days`` days ago, with what hangs
    off them (plans, steps, LLM calls, episodes by cascade; step runs here)."""
    picked = (select(goals.c.id).where(_finished_before(days)).limit(batch)
              .with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED"))
    ids = list(connection.execute(delete(goals).where(goals.c.id == picked.c.id)
                                  .returning(goals.c.id)).scalars())
    if ids:
        connection.execute(delete(step_runs).where(step_runs.c.goal_id.in_(ids)))
    return len(ids)


def count_goals_past(connection: Connection, *, days: float) -> int:
    """Goals finished more than ``days`` days ago."""
    return connection.execute(select(func.count()).where(_finished_before(days))).scalar_one()
