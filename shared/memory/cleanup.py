"""The memory cleanup pass: named phases, each in bounded batches, each returning counts.

Beat runs it nightly (``taskforce.maintenance.clean_memory``); ``taskforce memory cleanup
[--dry-run]`` runs it by hand. Phases, in order (:data:`PHASES`):

* ``expired``: delete items whose TTL has passed (gone, not hidden), through
  ``ix_memory_items_expires``.
* ``duplicates``: delete superseded items whose exact content is live again, and mark
  older live near-duplicates (same normalised text) superseded by the newer one, for the
  items not checked yet (``ix_memory_items_unchecked``, then ``ix_memory_items_norm``).
* ``retention``: purge items superseded more than ``MEMORY_HISTORY_RETENTION_DAYS`` ago
  (``ix_memory_items_superseded``) and goals finished more than
  ``MEMORY_RETENTION_DAYS`` ago, with everything they hold.
* ``caps``: in namespaces over ``MEMORY_NAMESPACE_MAX_ITEMS`` (read from the
  ``memory_usage`` counters), delete superseded items, oldest first, down to the cap.

Each batch is one short transaction locking at most ``MEMORY_CLEANUP_BATCH_SIZE`` rows
(``FOR UPDATE SKIP LOCKED``): no statement locks or lists a whole tenant, and a live item
(current, unexpired) is never deleted. A phase is a function ``(Pass) -> {name: count}``;
more phases join by adding to :data:`PHASES`. A dry run counts what each phase would do
and changes nothing. Every pass, dry or not, is recorded in ``memory_cleanup_runs``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.engine import Connection, Engine

from shared.persistence import memory_cleanup as sql
from shared.persistence.db import get_engine
from shared.persistence.memory_tables import memory_cleanup_runs
from shared.settings import Settings, get_settings

T = TypeVar("T")
MAX_NAMESPACES_PER_PASS = 1_000  # over-cap namespaces one pass trims


@dataclass
class Pass:
    """One cleanup pass: its settings, whether it is dry, and the longest transaction.

    Attributes:
        engine: Where to clean.
        settings: Batch size, retention and caps.
        dry_run: Count only, change nothing.
        max_statement_ms: The longest any batch's transaction held its locks so far
            (milliseconds; from its first statement to its commit).
    """

    engine: Engine
    settings: Settings
    dry_run: bool
    max_statement_ms: float = 0.0
    statements: int = field(default=0)

    def batch(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in its own transaction, committed at once, and time it."""
        started = time.perf_counter()
        with self.engine.begin() as connection:
            result = work(connection)
        self.max_statement_ms = max(self.max_statement_ms,
                                    (time.perf_counter() - started) * 1000)
        self.statements += 1
        return result

    def repeat(self, work: Callable[[Connection], int]) -> int:
        """Run the batch ``work`` until it does less than a full batch; return the total."""
        total = 0
        while True:
            done = self.batch(work)
            total += done
            if done < self.settings.memory_cleanup_batch_size:
                return total


def expired(run: Pass) -> dict[str, int]:
    """Delete expired items."""
    if run.dry_run:
        return {"expired_deleted": run.batch(sql.count_expired)}
    size = run.settings.memory_cleanup_batch_size
    return {"expired_deleted": run.repeat(lambda c: sql.delete_expired(c, batch=size))}


def duplicates(run: Pass) -> dict[str, int]:
    """Drop exact duplicates kept as history, supersede near-duplicates."""
    if run.dry_run:
        exact, near = run.batch(sql.count_duplicates)
        return {"exact_duplicates_deleted": exact, "near_duplicates_superseded": near}
    size = run.settings.memory_cleanup_batch_size
    totals = {"exact_duplicates_deleted": 0, "near_duplicates_superseded": 0, "checked": 0}

    def one(connection: Connection) -> int:
        ids = sql.lock_unchecked(connection, batch=size)
        if ids:
            exact, near = sql.dedupe(connection, ids=ids)
            totals["exact_duplicates_deleted"] += exact
            totals["near_duplicates_superseded"] += near
            totals["checked"] += len(ids)
        return len(ids)

    run.repeat(one)
    return totals


def retention(run: Pass) -> dict[str, int]:
    """Purge history and finished goals past their retention."""
    days = run.settings.memory_history_retention_days
    goal_days = run.settings.memory_retention_days
    if run.dry_run:
        return {"superseded_purged": run.batch(
                    lambda c: sql.count_superseded_past(c, days=days)),
                "goals_purged": run.batch(lambda c: sql.count_goals_past(c, days=goal_days))}
    size = run.settings.memory_cleanup_batch_size
    return {
        "superseded_purged": run.repeat(
            lambda c: sql.purge_superseded(c, batch=size, days=days)),
        "goals_purged": run.repeat(lambda c: sql.purge_goals(c, batch=size, days=goal_days)),
    }


def caps(run: Pass) -> dict[str, int]:
    """Trim the history of namespaces over their cap; count live items still over it."""
    cap, size = run.settings.memory_namespace_max_items, run.settings.memory_cleanup_batch_size
    over = run.batch(lambda c: sql.namespaces_over(c, cap=cap, limit=MAX_NAMESPACES_PER_PASS))
    trimmed = live_over = 0
    for tenant_id, namespace, items in over:
        excess = items - cap
        if run.dry_run:
            history = run.batch(lambda c: sql.count_history(c, tenant_id=tenant_id,
                                                            namespace=namespace))
            done = min(history, excess)
        else:
            done = 0
            while done < excess:
                step = run.batch(lambda c: sql.trim_history(
                    c, tenant_id=tenant_id, namespace=namespace,
                    batch=min(size, excess - done)))
                done += step
                if step == 0:
                    break
        trimmed += done
        live_over += excess - done
    return {"namespaces_over_cap": len(over), "history_trimmed": trimmed,
            "live_items_over_cap": live_over}


Phase = Callable[[Pass], dict[str, int]]
PHASES: list[tuple[str, Phase]] = [
    ("expired", expired),
    ("duplicates", duplicates),
    ("retention", retention),
    ("caps", caps),
]
"""The phases in order. A phase returns its counts by name; add one by inserting
``(name, function)`` here. Compacting long sessions into summaries is beat's separate
``compact-sessions`` job (:func:`shared.memory.compaction.compact_sessions`): it calls
an LLM and runs every ``SESSION_COMPACT_INTERVAL_S``, where this pass is SQL only and
nightly."""


def run_cleanup(*, dry_run: bool = False, engine: Engine | None = None,
                settings: Settings | None = None) -> dict[str, Any]:
    """Run one cleanup pass and record it in ``memory_cleanup_runs``.

    Returns:
        ``{"run_id", "dry_run", "started_at" (ISO 8601), "seconds", "max_statement_ms",
        "statements", "phases": {name: {"counts": {...}, "seconds": float,
        "max_statement_ms": float}}}``; in a dry
        run the counts are what a pass would do now.
    """
    run = Pass(engine or get_engine(), settings or get_settings(), dry_run)
    started_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    phases: dict[str, dict[str, Any]] = {}
    for name, phase in PHASES:
        phase_started, longest_before = time.perf_counter(), run.max_statement_ms
        run.max_statement_ms = 0.0
        counts = phase(run)
        phases[name] = {"counts": counts,
                        "seconds": round(time.perf_counter() - phase_started, 4),
                        "max_statement_ms": round(run.max_statement_ms, 3)}
        run.max_statement_ms = max(longest_before, run.max_statement_ms)
    seconds = round(time.perf_counter() - started, 4)
    with run.engine.begin() as connection:
        run_id = connection.execute(insert(memory_cleanup_runs).values(
            started_at=started_at, finished_at=datetime.now(timezone.utc), dry_run=dry_run,
            seconds=seconds, counts={n: p["counts"] for n, p in phases.items()},
            phase_seconds={n: p["seconds"] for n, p in phases.items()},
            max_statement_ms=round(run.max_statement_ms, 3),
        ).returning(memory_cleanup_runs.c.id)).scalar_one()
    return {"run_id": run_id, "dry_run": dry_run, "started_at": started_at.isoformat(),
            "seconds": seconds, "max_statement_ms": round(run.max_statement_ms, 3),
            "statements": run.statements, "phases": phases}
