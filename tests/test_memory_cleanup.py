"""The memory cleanup pass: beat's job on the real workers, its dry run from the CLI,
and the rules it keeps: expired items deleted (not hidden), exact duplicates dropped,
near-duplicates superseded, history past retention purged, namespace caps trimmed from
history, rows a writer holds skipped, and nothing live ever deleted."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import text
from typer.testing import CliRunner

from shared import names
from shared.celery_app import send
from shared.memory import store as memory
from shared.memory.cleanup import PHASES, run_cleanup
from shared.persistence.db import get_engine
from shared.settings import overridden_settings
from taskforce_cli.main import app as cli
from tests.support.memory import new_tenant
from tests.support.waiting import wait_until


def put(tenant_id: uuid.UUID, content: str, **extra) -> uuid.UUID:
    write = memory.MemoryWrite(content=content, **extra)
    return memory.remember(write, tenant_id=tenant_id, source="api").item.id


def sql(db, statement: str, **params):
    with db.begin() as connection:
        return connection.execute(text(statement), params)


def exists(db, item_id: uuid.UUID) -> bool:
    return sql(db, "SELECT count(*) FROM memory_items WHERE id = :id", id=item_id).scalar() == 1


def state(db, item_id: uuid.UUID) -> tuple:
    return sql(db, "SELECT valid_to IS NOT NULL, superseded_by FROM memory_items "
                   "WHERE id = :id", id=item_id).one()


def scenario(db) -> dict[str, uuid.UUID]:
    """One tenant's memory with something for every phase, and live items around it."""
    tenant_id = new_tenant("cleanup")
    ids = {
        "live": put(tenant_id, "The wiki lives at wiki.example.org."),
        "live_ttl": put(tenant_id, "The sprint ends on the 14th.", ttl_s=3_600),
        "expired": put(tenant_id, "The guest wifi password is kiwi42.", ttl_s=60),
        "near_old": put(tenant_id, "Paris is the capital of France."),
    }
    sql(db, "UPDATE memory_items SET expires_at = now() - interval '1 s' WHERE id = :id",
        id=ids["expired"])
    sql(db, "UPDATE memory_items SET created_at = now() - interval '1 h' WHERE id = :id",
        id=ids["near_old"])
    ids["near_new"] = put(tenant_id, "paris is the capital of france")
    # A fact superseded, then stated again: the superseded copy duplicates a live item.
    ids["copy"] = put(tenant_id, "The on-call phone is 555-0100.")
    ids["copy_successor"] = put(tenant_id, "The on-call phone is 555-0199.",
                                supersedes=ids["copy"])
    ids["restated"] = put(tenant_id, "The on-call phone is 555-0100.",
                          supersedes=ids["copy_successor"])
    # History: one superseded recently (kept), one long ago (past retention).
    ids["old_v1"] = put(tenant_id, "The CFO is Dana.")
    ids["old_v2"] = put(tenant_id, "The CFO is Eli.", supersedes=ids["old_v1"])
    ids["ancient_v1"] = put(tenant_id, "The HQ is in Oslo.")
    ids["ancient_v2"] = put(tenant_id, "The HQ is in Bergen.", supersedes=ids["ancient_v1"])
    sql(db, "UPDATE memory_items SET valid_to = now() - interval '400 days' WHERE id = :id",
        id=ids["ancient_v1"])
    return ids


LIVE_KEYS = ("live", "live_ttl", "near_new", "restated", "old_v2", "ancient_v2")


def check_outcome(db, ids: dict[str, uuid.UUID]) -> None:
    assert not exists(db, ids["expired"])  # deleted, not hidden
    assert not exists(db, ids["copy"])  # an exact duplicate of a live item
    assert not exists(db, ids["ancient_v1"])  # superseded 400 days ago
    assert state(db, ids["near_old"]) == (True, ids["near_new"])  # kept, superseded
    assert state(db, ids["old_v1"])[0] is True  # recent history stays
    assert state(db, ids["copy_successor"])[0] is True
    for key in LIVE_KEYS:
        assert exists(db, ids[key]) and state(db, ids[key]) == (False, None), key


def test_beats_cleanup_job_on_the_workers(workers, db) -> None:
    ids = scenario(db)
    before = sql(db, "SELECT coalesce(max(id), 0) FROM memory_cleanup_runs").scalar()
    send(names.CLEAN_MEMORY)
    run = wait_until(lambda: sql(db, "SELECT * FROM memory_cleanup_runs WHERE id > :id AND "
                                     "NOT dry_run", id=before).mappings().first(),
                     message="a memory_cleanup_runs row")
    check_outcome(db, ids)
    assert set(run["counts"]) == {name for name, _ in PHASES}
    assert run["counts"]["expired"]["expired_deleted"] >= 1
    assert run["counts"]["duplicates"]["exact_duplicates_deleted"] >= 1
    assert run["counts"]["duplicates"]["near_duplicates_superseded"] >= 1
    assert run["counts"]["retention"]["superseded_purged"] >= 1
    assert run["seconds"] >= 0 and run["max_statement_ms"] > 0
    # The usage counters followed every deletion.
    assert sql(db, "SELECT count(*) FROM memory_usage u WHERE items <> (SELECT count(*) FROM "
                   "memory_items m WHERE m.tenant_id = u.tenant_id AND m.namespace = "
                   "u.namespace)").scalar() == 0


def test_a_dry_run_shows_what_a_pass_would_do_and_changes_nothing(services, db) -> None:
    run_cleanup()  # start from a clean state
    ids = scenario(db)
    rows_before = sql(db, "SELECT count(*) FROM memory_items").scalar()
    shown = CliRunner().invoke(cli, ["memory", "cleanup", "--dry-run", "--json"])
    assert shown.exit_code == 0, shown.output
    dry = json.loads(shown.output)
    assert dry["dry_run"] is True
    assert sql(db, "SELECT count(*) FROM memory_items").scalar() == rows_before
    assert exists(db, ids["expired"]) and state(db, ids["near_old"]) == (False, None)
    real = run_cleanup()
    check_outcome(db, ids)
    for phase in ("expired", "retention"):
        assert dry["phases"][phase]["counts"] == real["phases"][phase]["counts"], phase
    for count in ("exact_duplicates_deleted", "near_duplicates_superseded"):
        assert (dry["phases"]["duplicates"]["counts"][count]
                == real["phases"]["duplicates"]["counts"][count]), count
    assert sql(db, "SELECT dry_run FROM memory_cleanup_runs WHERE id = :id",
               id=dry["run_id"]).scalar() is True


def test_batches_skip_rows_a_writer_holds_and_never_touch_live_items(services, db) -> None:
    tenant_id = new_tenant("batches")
    live = [put(tenant_id, f"Live fact number {i}.", ttl_s=3_600 if i % 2 else None)
            for i in range(8)]
    expired = [put(tenant_id, f"Expired fact number {i}.", ttl_s=60) for i in range(10)]
    sql(db, "UPDATE memory_items SET expires_at = now() - interval '1 s' "
            "WHERE id = ANY(:ids)", ids=expired)
    held = get_engine().connect()
    transaction = held.begin()
    held.execute(text("SELECT id FROM memory_items WHERE id = :id FOR UPDATE"),
                 {"id": expired[0]})
    try:
        with overridden_settings(MEMORY_CLEANUP_BATCH_SIZE=3):
            result = run_cleanup()
    finally:
        transaction.rollback()
        held.close()
    assert result["phases"]["expired"]["counts"]["expired_deleted"] >= 9
    assert result["statements"] > 4  # batches of three
    assert exists(db, expired[0])  # skipped while held, not waited for
    assert not any(exists(db, i) for i in expired[1:])
    assert all(exists(db, i) for i in live)
    run_cleanup()
    assert not exists(db, expired[0])


def test_namespace_caps_trim_history_never_live_items(services, db) -> None:
    tenant_id = new_tenant("caps")
    first = put(tenant_id, "Version 1 of the runbook.", namespace="runbook")
    second = put(tenant_id, "Version 2 of the runbook.", namespace="runbook", supersedes=first)
    third = put(tenant_id, "Version 3 of the runbook.", namespace="runbook", supersedes=second)
    extra = put(tenant_id, "The runbook owner is Sam.", namespace="runbook")
    with overridden_settings(MEMORY_NAMESPACE_MAX_ITEMS=2):
        result = run_cleanup()
    counts = result["phases"]["caps"]["counts"]
    assert counts["history_trimmed"] >= 2 and counts["namespaces_over_cap"] >= 1
    assert not exists(db, first) and not exists(db, second)
    assert exists(db, third) and exists(db, extra)
    with overridden_settings(MEMORY_NAMESPACE_MAX_ITEMS=1):
        over = run_cleanup()["phases"]["caps"]["counts"]
    assert over["live_items_over_cap"] >= 1  # reported, not deleted
    assert exists(db, third) and exists(db, extra)
