"""Hybrid recall with pgvector, embeddings from the providers' APIs, and the fallback to
full-text on a database without pgvector (on a real worker).

The vector tests need a PostgreSQL with pgvector: the suite's own when it has it (the
embedded one does), else an embedded PostgreSQL started here. The fallback test builds
a fresh database in which the ``vector`` extension does not exist (dropped after the
migration where the server offers it), so it is meaningful on either server.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shared import goals
from shared.domain.models import GoalRequest
from shared.llm.embeddings import SIM_MODEL, embedder, sim_vector
from shared.memory import store as memory
from shared.persistence.db import get_engine, migrate
from shared.settings import Settings, get_settings, overridden_settings
from taskforce_cli import fleet
from tests.conftest import _fresh_database, wait_for_goal
from tests.support.memory import new_tenant


@pytest.fixture(scope="module")
def vector_database(services):
    """A migrated database with pgvector: the suite's own, or an embedded server's."""
    memory.forget_vector_support()
    if memory.vector_dimension(get_engine()) is not None:
        yield get_settings().database_url
        return
    from taskforce_cli.embedded import EmbeddedPostgres

    directory = Path(tempfile.mkdtemp(prefix="taskforce-pgvector-"))
    directory.chmod(0o755)
    server = EmbeddedPostgres(directory)
    url = server.start()
    try:
        migrate(url)
        yield url
    finally:
        server.stop()


@pytest.fixture()
def on_vectors(vector_database):
    with overridden_settings(DATABASE_URL=vector_database):
        memory.forget_vector_support()
        yield
    memory.forget_vector_support()


def test_sim_embeddings_are_deterministic_normalised_and_marked() -> None:
    first = embedder(Settings(memory_embedding_dim=64)).embed(["Bruno likes tea", "tea"])
    again = embedder(Settings(memory_embedding_dim=64)).embed(["Bruno likes tea", "tea"])
    assert first == again and first.simulated and first.model == SIM_MODEL
    assert all(len(v) == 64 for v in first.vectors)
    assert abs(sum(x * x for x in first.vectors[0]) - 1.0) < 1e-4


def test_openai_embeddings_through_the_sdk_and_the_wire_simulator(llm_simulator) -> None:
    for provider, extra in (("openai", {}), ("openai-compatible", {
            "openai_compatible_base_url": llm_simulator.openai_base_url})):
        settings = Settings(**{**get_settings().model_dump(), **extra,
                               "memory_embedding_provider": provider,
                               "memory_embedding_dim": 32})
        made = embedder(settings).embed(["Ada writes OCaml.", "Ada"])
        assert made.simulated, provider  # the simulator says so; never taken for real
        assert made.vectors == [sim_vector("Ada writes OCaml.", 32), sim_vector("Ada", 32)]
    assert llm_simulator.simulator.stats()["routes"].get("embeddings", 0) >= 2


def test_anthropic_has_no_embeddings_endpoint_so_recall_is_full_text(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        assert embedder(Settings(memory_embedding_provider="anthropic")) is None
        assert embedder(Settings(memory_embedding_provider="anthropic")) is None
    assert sum("no embeddings endpoint" in r.message for r in caplog.records) <= 1


def test_hybrid_recall_fuses_both_rankings(on_vectors) -> None:
    tenant_id = new_tenant("hybrid")
    for fact in ("It is what it is, and that is all there is to it.",
                 "Bruno is allergic to peanuts.", "The deploy window is Tuesday."):
        stored = memory.remember(memory.MemoryWrite(content=fact), tenant_id=tenant_id,
                                 source="api")
        assert stored.item.embedding_simulated and stored.item.embedding_model == SIM_MODEL
    both = memory.recall(tenant_id=tenant_id, query="Bruno allergic peanuts")
    assert both.mode == "hybrid" and both.simulated_embeddings and both.note is None
    top = both.hits[0]
    assert top.content == "Bruno is allergic to peanuts."
    assert top.full_text_rank == 1 and top.vector_rank == 1
    assert top.score == pytest.approx(2 / (60 + 1))  # reciprocal rank fusion, k = 60
    # Only stop words: full-text finds nothing, the vectors still do.
    vague = memory.recall(tenant_id=tenant_id, query="what is it all")
    assert vague.hits and vague.hits[0].content.startswith("It is what it is")
    assert vague.hits[0].full_text_rank is None and vague.hits[0].vector_rank == 1


def test_vectors_are_tenant_scoped_and_go_with_their_item(on_vectors) -> None:
    owner, stranger = new_tenant("vec-owner"), new_tenant("vec-stranger")
    item = memory.remember(memory.MemoryWrite(content="The vault opens with the word Heron."),
                           tenant_id=owner, source="api").item
    assert memory.recall(tenant_id=stranger, query="what is it all the vault").hits == []
    engine = get_engine()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM memory_embeddings WHERE "
                                       "item_id = :id"), {"id": item.id}).scalar() == 1
    memory.forget(item.id, tenant_id=owner)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM memory_embeddings WHERE "
                                       "item_id = :id"), {"id": item.id}).scalar() == 0


def _other_redis(url: str) -> str:
    """An empty database number on the same Redis (from 15 down), so the fallback
    worker's queue is its own even on a Redis that other test runs share."""
    import redis

    current = int(make_url(url.replace("redis://", "postgresql://", 1)).database or 0)
    base = url.rsplit("/", 1)[0]
    for number in range(15, 0, -1):
        client = redis.Redis.from_url(f"{base}/{number}")
        try:
            if number != current and client.dbsize() == 0:
                return f"{base}/{number}"
        finally:
            client.close()
    raise AssertionError("no empty Redis database for the fallback worker")


def test_without_pgvector_recall_falls_back_to_full_text_on_a_worker(services, workers,
                                                                      tmp_path) -> None:
    url, drop = _fresh_database(services["DATABASE_URL"])
    try:
        migrate(url)
        with overridden_settings(DATABASE_URL=url):
            with get_engine().begin() as connection:  # a server without the extension
                connection.execute(text("DROP TABLE IF EXISTS memory_embeddings"))
                connection.execute(text("DROP EXTENSION IF EXISTS vector"))
                assert connection.execute(text(
                    "SELECT count(*) FROM pg_extension WHERE extname = 'vector'")).scalar() == 0
        with overridden_settings(DATABASE_URL=url,
                                 REDIS_URL=_other_redis(services["REDIS_URL"])):
            memory.forget_vector_support()
            worker = fleet.start_worker("no-pgvector", log_dir=tmp_path, concurrency=4)
            try:
                fleet.wait_for_workers([worker])
                tenant_id = new_tenant("fallback")
                memory.remember(memory.MemoryWrite(content="Mercury is the closest planet."),
                                tenant_id=tenant_id, source="api")
                results = []
                for _ in range(2):
                    request = GoalRequest(goal="recall", max_replans=0, plan={"steps": [
                        {"id": 1, "kind": "tool", "tool": "recall",
                         "args": {"query": "closest planet"}},
                        {"id": 2, "kind": "synthesize", "args": {"inputs": ["$1"]},
                         "depends_on": [1]}]})
                    done = wait_for_goal(goals.submit(request, tenant_id=tenant_id).goal_id)
                    assert done.status == "succeeded", done.error
                    results.append(done.steps[0].result)
            finally:
                worker.stop()
        for result in results:
            assert result["mode"] == "full_text" and "pgvector" in result["note"]
            assert result["hits"][0]["snippet"] == "Mercury is the closest planet."
        log = worker.log_path.read_text()
        assert log.count("memory recall is full-text only") == 1, log[-2000:]
    finally:
        memory.forget_vector_support()
        drop()
