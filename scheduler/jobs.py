"""Maintenance tasks run by workers on beat's schedule: clean old memory, roll up costs."""

from __future__ import annotations

from typing import Any

from scheduler import reconciler
from shared import names
from shared.celery_app import app
from shared.memory.cleanup import run_cleanup
from shared.memory.compaction import compact_sessions as compact_sessions_pass
from shared.persistence import maintenance
from shared.persistence.db import get_engine


@app.task(name=names.CLEAN_MEMORY)
def clean_memory(dry_run: bool = False) -> dict[str, Any]:
    """One memory cleanup pass (:mod:`shared.memory.cleanup`): expired items, duplicates,
    history and finished goals past retention, namespace caps, in bounded batches.
    Returns what it did (counts per phase, seconds), also stored in
    ``memory_cleanup_runs``."""
    return run_cleanup(dry_run=dry_run)


@app.task(name=names.RECONCILE, ignore_result=True)
def reconcile() -> dict[str, int | bool]:
    """One reconciler pass (see ``shared.persistence.reconcile``); returns its counts."""
    return reconciler.run_once().as_dict()


@app.task(name=names.ROLLUP_COSTS)
def rollup_costs() -> int:
    """Recompute per-day, per-provider, per-model cost totals for the last 2 days.
    Returns the number of rollup rows written."""
    with get_engine().begin() as connection:
        return maintenance.rollup_costs(connection, days=2)


@app.task(name=names.COMPACT_SESSIONS, ignore_result=True)
def compact_sessions() -> dict[str, int]:
    """One session compaction pass (:func:`shared.memory.compaction.compact_sessions`);
    returns its counts."""
    return compact_sessions_pass()
