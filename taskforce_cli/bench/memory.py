"""``taskforce bench memory``: long-term memory's recall latency and cleanup throughput.

The benchmark creates a scratch database on the configured server (the embedded
PostgreSQL by default), migrates it, and loads one tenant with ``items`` facts (100,000
by default; generated sentences about people, places and projects, each with its
``sim`` embedding when the server has pgvector). The HNSW index is built once after the
load, as for any bulk import (``load_s``, ``index_build_s``). Then its parts run in
order, each returning a dict of figures; the figures are merged:

* :func:`recall_part`: ``recall_p50_ms`` / ``recall_p99_ms``, one
  :func:`shared.memory.store.recall` each (the query's embedding plus the hybrid SQL:
  full-text and HNSW candidates fused by reciprocal rank), sequentially, after warm-up.
* :func:`cleanup_part`: every loaded item expires; one cleanup pass deletes them in
  batches (``cleanup_items_per_s``); ``cleanup_max_lock_ms`` is the longest any batch's
  transaction held its locks (from its first statement to its commit). A control set of
  live items must all survive (``cleanup_live_deleted``, expected 0).

Add a part by appending a ``(context) -> dict`` function to :data:`PARTS`.
"""

from __future__ import annotations

import platform
import random
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from shared.llm.embeddings import embedder
from shared.memory import store as memory
from shared.memory.cleanup import run_cleanup
from shared.persistence import memory as store
from shared.persistence import memory_search
from shared.persistence.db import dispose_engine, get_engine
from shared.persistence.keys import ensure_tenant
from shared.persistence.scratch import scratch_database
from shared.settings import get_settings, overridden_settings
from taskforce_cli.fleet import servers

NAMESPACE = "bench"
CONTROL_NAMESPACE = "bench-live"
LOAD_BATCH = 2_000
_PEOPLE = ["Ada", "Bruno", "Carla", "Dana", "Eli", "Farah", "Goran", "Hana", "Ivo", "Jun",
           "Kira", "Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq"]
_VERBS = ["works on", "leads", "reviews", "maintains", "designed", "tests", "funds", "audits"]
_THINGS = ["the billing service", "the search index", "the mobile app", "the data lake",
           "the payroll export", "the design system", "the on-call rota", "the CI runners",
           "the onboarding guide", "the pricing page", "the warehouse robots", "the API docs"]
_PLACES = ["Lisbon", "Oslo", "Kyoto", "Austin", "Nairobi", "Lima", "Gdansk", "Perth",
           "Quebec", "Seville", "Tallinn", "Hanoi"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


@dataclass
class Context:
    """What the parts share: the loaded tenant, its item count, the run's settings."""

    tenant_id: uuid.UUID
    items: int
    queries: int
    rng: random.Random
    say: Callable[..., None]
    loaded_s: float = 0.0


def fact(rng: random.Random, number: int) -> str:
    """A generated fact (the number keeps every one distinct)."""
    return (f"{rng.choice(_PEOPLE)} {rng.choice(_VERBS)} {rng.choice(_THINGS)} from "
            f"{rng.choice(_PLACES)} every {rng.choice(_DAYS)} (ticket {number}).")


def load(ctx: Context, namespace: str, count: int) -> None:
    """Insert ``count`` facts (with embeddings where the database has pgvector)."""
    settings = get_settings()
    maker = embedder(settings) if memory.vector_dimension(get_engine()) else None
    for start in range(0, count, LOAD_BATCH):
        texts = [fact(ctx.rng, n) for n in range(start, min(count, start + LOAD_BATCH))]
        vectors = maker.embed(texts) if maker else None
        rows = []
        for content in texts:
            exact, normal = memory.content_hashes(content)
            rows.append({"tenant_id": ctx.tenant_id, "namespace": namespace,
                         "content": content, "content_sha256": exact, "norm_sha256": normal,
                         "source": "bench", "embedding_model": vectors.model if vectors else None,
                         "embedding_simulated": bool(vectors and vectors.simulated)})
        with get_engine().begin() as connection:
            ids = store.add_many(connection, rows)
            if vectors:
                memory_search.add_embeddings(connection, [
                    {"item": i, "tenant": ctx.tenant_id, "ns": namespace,
                     "vector": memory_search.vector_literal(v)}
                    for i, v in zip(ids, vectors.vectors)])
        if start and start % 20_000 == 0:
            ctx.say(f"  loaded {start:,} of {count:,}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def recall_part(ctx: Context) -> dict[str, Any]:
    """Hybrid recall latency with ``ctx.items`` items in the tenant (milliseconds)."""
    questions = [f"What does {ctx.rng.choice(_PEOPLE)} do for {ctx.rng.choice(_THINGS)}?"
                 for _ in range(ctx.queries)]
    for question in questions[:20]:  # warm-up: caches, connections; not timed
        memory.recall(tenant_id=ctx.tenant_id, query=question, namespace=NAMESPACE)
    timings, modes, hits = [], set(), 0
    for question in questions:
        started = time.perf_counter()
        found = memory.recall(tenant_id=ctx.tenant_id, query=question, namespace=NAMESPACE)
        timings.append((time.perf_counter() - started) * 1000)
        modes.add(found.mode)
        hits += bool(found.hits)
    return {"recall_p50_ms": round(statistics.median(timings), 2),
            "recall_p99_ms": round(_percentile(timings, 0.99), 2),
            "recall_queries": len(timings), "recall_mode": "/".join(sorted(modes)),
            "recall_queries_with_hits": hits}


def cleanup_part(ctx: Context) -> dict[str, Any]:
    """Delete every loaded item after expiring it: items per second and longest lock."""
    load(ctx, CONTROL_NAMESPACE, 200)  # live items that must all survive
    with get_engine().begin() as connection:
        expired = store.expire_namespace(connection, tenant_id=ctx.tenant_id,
                                         namespace=NAMESPACE)
        before = store.count_items(connection, tenant_id=ctx.tenant_id)
    result = run_cleanup()
    deleted = result["phases"]["expired"]["counts"]["expired_deleted"]
    seconds = result["phases"]["expired"]["seconds"]
    with get_engine().connect() as connection:
        after = store.count_items(connection, tenant_id=ctx.tenant_id)
    return {"cleanup_expired_items": expired, "cleanup_deleted": deleted,
            "cleanup_items_per_s": round(deleted / seconds, 1) if seconds else None,
            "cleanup_max_lock_ms": result["max_statement_ms"],
            "cleanup_max_lock_ms_by_phase": {name: phase["max_statement_ms"]
                                             for name, phase in result["phases"].items()},
            "cleanup_batch_size": get_settings().memory_cleanup_batch_size,
            "cleanup_live_deleted": (before - expired) - after}


PARTS: list[Callable[[Context], dict[str, Any]]] = [recall_part, cleanup_part]
"""The parts, run in order on one loaded tenant; their dicts are merged."""


def memory_benchmark(*, items: int = 100_000, queries: int = 300,
                     progress: Console | None = None) -> dict[str, Any]:
    """Load ``items`` facts into a new tenant and run :data:`PARTS` on it.

    Returns:
        The merged figures of every part, plus ``items``, ``embeddings`` (``sim``
        vectors stored, or ``none`` without pgvector), ``load_s`` and the machine.
    """
    say = progress.print if progress else (lambda *_: None)
    with servers(), scratch_database("taskforce_bench_memory") as url, overridden_settings(
            DATABASE_URL=url, MEMORY_MAX_ITEMS_PER_TENANT=items + 1_000,
            MEMORY_NAMESPACE_MAX_ITEMS=items + 1_000):
        memory.forget_vector_support()
        vectors = memory.vector_dimension(get_engine()) is not None
        with get_engine().begin() as connection:
            tenant_id = ensure_tenant(connection, name=f"bench-memory-{uuid.uuid4().hex[:8]}")
            if vectors:
                memory_search.drop_vector_index(connection)
        ctx = Context(tenant_id, items, queries, random.Random(7), say)
        say(f"loading {items:,} items")
        started = time.perf_counter()
        load(ctx, NAMESPACE, items)
        ctx.loaded_s = time.perf_counter() - started
        started = time.perf_counter()
        with get_engine().begin() as connection:
            if vectors:
                say("building the HNSW index")
                memory_search.create_vector_index(connection)
            store.analyze(connection)
        figures: dict[str, Any] = {
            "date": datetime.now(UTC).date().isoformat(),
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
            "items": items, "load_s": round(ctx.loaded_s, 1),
            "index_build_s": round(time.perf_counter() - started, 1),
            "embeddings": "sim" if vectors else "none (no pgvector: full-text recall)",
        }
        for part in PARTS:
            say(f"running {part.__name__}")
            figures |= part(ctx)
        dispose_engine()
    memory.forget_vector_support()
    return figures


def memory_bench(*, quick: bool, progress: Console | None) -> dict[str, Any]:
    """The benchmark as ``taskforce bench memory`` runs it: recall and cleanup on
    100,000 items (:func:`memory_benchmark`), then plan reuse on a stream of 200 goals
    (:func:`taskforce_cli.bench.memory_reuse.reuse_figures`; its figures under
    ``reuse``, the three headline fractions also at the top level). ``--quick``: 5,000
    items and 20 goals."""
    from taskforce_cli.bench.memory_reuse import reuse_figures

    if quick:
        figures = memory_benchmark(items=5_000, queries=100, progress=progress)
    else:
        figures = memory_benchmark(progress=progress)
    reuse = reuse_figures(20 if quick else 200, progress=progress)
    for name in ("planning_calls_saved_fraction", "planning_latency_saved_fraction",
                 "answer_agreement"):
        figures[name] = reuse.get(name)
    figures["reuse"] = reuse
    return figures
