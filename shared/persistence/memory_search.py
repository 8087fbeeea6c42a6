"""Recall in SQL: full-text and pgvector candidates fused by reciprocal rank.

Reciprocal rank fusion (Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms
Condorcet and individual Rank Learning Methods", SIGIR 2009): each retriever ranks its
candidates 1, 2, ...; an item's score is the sum over retrievers of ``1 / (k + rank)``,
with ``k = 60`` as in the paper (``MEMORY_RRF_K``). Ranks, not scores, are fused, so the
full-text rank (``ts_rank_cd``) and the cosine distance need no common scale.

The full-text retriever ranks items holding every query term first, then a bounded
number of items holding any term; the vector retriever takes the HNSW index's nearest
neighbours within ``MEMORY_VECTOR_MAX_DISTANCE``.

Raw SQL throughout: the ``vector`` type and its ``<=>`` operator belong to the pgvector
extension, unknown to SQLAlchemy, and the tsquery rewrite (terms OR-ed, as
:mod:`shared.persistence.documents` does) reads more plainly as SQL. Vectors travel as
their text form (``'[0.1,0.2,...]'``) cast to ``vector``. Every statement is scoped by
tenant and keeps only live items (not superseded, not expired).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

_LIVE = "m.valid_to IS NULL AND (m.expires_at IS NULL OR m.expires_at > now())"
_SCOPE = "m.tenant_id = :tenant AND (CAST(:ns AS text) IS NULL OR m.namespace = :ns)"

# Full-text candidates in two tiers: items holding every query term (plainto_tsquery, an
# AND: few rows, found by intersecting GIN posting lists), ranked by ts_rank_cd; then
# items holding any term (the terms OR-ed), of which at most :scan are read and ranked,
# so a common word cannot make a recall rank a large share of the tenant's items.
_FULL_TEXT = f"""
    SELECT id, row_number() OVER (ORDER BY min(tier), max(score) DESC, id) AS rank
    FROM (
        (SELECT m.id, 0 AS tier, ts_rank_cd(m.tsv, q.all_terms) AS score
         FROM memory_items m, q
         WHERE q.all_terms::text <> '' AND m.tsv @@ q.all_terms AND {_SCOPE} AND {_LIVE}
         ORDER BY score DESC LIMIT :candidates)
        UNION ALL
        (SELECT matched.id, 1, ts_rank_cd(matched.tsv, q.any_term) AS score
         FROM (SELECT m.id, m.tsv FROM memory_items m, q
               WHERE q.any_term::text <> '' AND m.tsv @@ q.any_term AND {_SCOPE} AND {_LIVE}
               LIMIT :scan) matched, q
         ORDER BY score DESC LIMIT :candidates)
    ) tiers
    GROUP BY id
    ORDER BY rank LIMIT :candidates
"""
_QUERIES = """q AS (
        SELECT plainto_tsquery('english', :query) AS all_terms,
               replace(plainto_tsquery('english', :query)::text, '&', '|')::tsquery AS any_term
    )"""

# The inner ORDER BY .. LIMIT is what the HNSW index serves; the tenant and namespace
# filters apply to what it returns (pgvector 0.6 has no filtered index scan), so
# hnsw.ef_search is raised to the candidate count first (see set_ef_search).
_VECTOR = """
    SELECT id, row_number() OVER (ORDER BY distance, id) AS rank FROM (
        SELECT e.item_id AS id, e.embedding <=> CAST(:vector AS vector) AS distance
        FROM memory_embeddings e
        WHERE e.tenant_id = :tenant AND (CAST(:ns AS text) IS NULL OR e.namespace = :ns)
        ORDER BY e.embedding <=> CAST(:vector AS vector) LIMIT :candidates
    ) nearest
    WHERE distance <= :max_distance
"""

_FUSED = """
    WITH {queries}, full_text AS ({full_text}), vector AS ({vector}),
    fused AS (
        SELECT id, sum(1.0 / (:k + rank)) AS score,
               min(rank) FILTER (WHERE source = 'full_text') AS full_text_rank,
               min(rank) FILTER (WHERE source = 'vector') AS vector_rank
        FROM (SELECT id, rank, 'full_text' AS source FROM full_text
              UNION ALL SELECT id, rank, 'vector' FROM vector) ranked
        GROUP BY id
    )
    SELECT m.id, m.namespace, m.content, m.source, m.created_at, m.valid_to,
           m.superseded_by, m.expires_at, m.embedding_model, m.embedding_simulated,
           f.score, f.full_text_rank, f.vector_rank
    FROM fused f JOIN memory_items m ON m.id = f.id
    WHERE {live}
    ORDER BY f.score DESC, m.created_at DESC, m.id
    LIMIT :limit
"""
_HYBRID = text(_FUSED.format(queries=_QUERIES, full_text=_FULL_TEXT, vector=_VECTOR,
                             live=_LIVE))
_FULL_TEXT_ONLY = text(_FUSED.format(
    queries=_QUERIES, full_text=_FULL_TEXT,
    vector="SELECT NULL::uuid AS id, 0::bigint AS rank WHERE false",
    live=_LIVE))

# The dimension of memory_embeddings.embedding (a vector's typmod is its dimension), or
# no row when the server lacks the table or the extension.
_VECTOR_DIM = text("""
    SELECT a.atttypmod FROM pg_attribute a
    JOIN pg_extension x ON x.extname = 'vector'
    WHERE a.attrelid = to_regclass('memory_embeddings') AND a.attname = 'embedding'
      AND NOT a.attisdropped
""")


def vector_literal(vector: list[float]) -> str:
    """pgvector's text form of ``vector``: ``[0.1,0.2,...]``."""
    return "[" + ",".join(repr(float(v)) for v in vector) + "]"


def vector_dimension(connection: Connection) -> int | None:
    """The dimension of stored embeddings, or None when this database has no pgvector
    (no ``vector`` extension or no ``memory_embeddings`` table): recall is then
    full-text only."""
    value = connection.execute(_VECTOR_DIM).scalar()
    return int(value) if value is not None and value > 0 else None


def set_ef_search(connection: Connection, candidates: int) -> None:
    """Let the HNSW scan of this transaction return ``candidates`` neighbours
    (``hnsw.ef_search``, pgvector's default 40, at most 1,000)."""
    connection.execute(text("SELECT set_config('hnsw.ef_search', :value, true)"),
                       {"value": str(max(40, min(candidates, 1000)))})


def add_embedding(connection: Connection, *, item_id: uuid.UUID, tenant_id: uuid.UUID,
                  namespace: str, vector: list[float]) -> None:
    """Store the item's embedding (once: a repeated fact keeps its first one)."""
    connection.execute(text(
        "INSERT INTO memory_embeddings (item_id, tenant_id, namespace, embedding) "
        "VALUES (:item, :tenant, :ns, CAST(:vector AS vector)) ON CONFLICT DO NOTHING"),
        {"item": item_id, "tenant": tenant_id, "ns": namespace,
         "vector": vector_literal(vector)})


def add_embeddings(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Store many embeddings (``item``, ``tenant``, ``ns``, ``vector`` as text) at once."""
    if rows:
        connection.execute(text(
            "INSERT INTO memory_embeddings (item_id, tenant_id, namespace, embedding) "
            "VALUES (:item, :tenant, :ns, CAST(:vector AS vector)) ON CONFLICT DO NOTHING"),
            rows)


def recall(connection: Connection, *, tenant_id: uuid.UUID, namespace: str | None,
           query: str, vector: list[float] | None, limit: int, candidates: int,
           k: int, max_distance: float = 2.0) -> list[dict[str, Any]]:
    """The tenant's live items best matching ``query`` (and ``vector``, when given).

    Args:
        namespace: Only this namespace (None: all of the tenant's).
        vector: The query's embedding; None for full-text only.
        limit: Most items returned.
        candidates: Candidates each retriever contributes to the fusion; the full-text
            retriever reads at most four times as many any-term matches.
        k: The fusion's constant (60 in the paper).
        max_distance: Vector candidates farther than this cosine distance (0 to 2) are
            left out, so that a query unlike every item does not recall them all.

    Returns:
        Items best first: the item's columns plus ``score`` (the fused score),
        ``full_text_rank`` and ``vector_rank`` (None where that retriever missed it).
    """
    params: dict[str, Any] = {"tenant": tenant_id, "ns": namespace, "query": query,
                              "limit": limit, "candidates": candidates, "k": k,
                              "max_distance": max_distance, "scan": candidates * 4}
    if vector is None:
        statement = _FULL_TEXT_ONLY
    else:
        set_ef_search(connection, candidates)
        statement, params["vector"] = _HYBRID, vector_literal(vector)
    return [dict(row) for row in connection.execute(statement, params).mappings()]


def drop_vector_index(connection: Connection) -> None:
    """Drop the HNSW index (before a bulk load into a scratch database: building it once
    afterwards is several times faster than maintaining it row by row)."""
    connection.execute(text("DROP INDEX IF EXISTS ix_memory_embeddings_hnsw"))


def create_vector_index(connection: Connection, *, work_mem: str = "512MB") -> None:
    """(Re)build the HNSW index of migration 0009, with ``maintenance_work_mem`` raised
    for this transaction so that the graph is built in memory."""
    connection.execute(text("SELECT set_config('maintenance_work_mem', :mem, true)"),
                       {"mem": work_mem})
    connection.execute(text("CREATE INDEX IF NOT EXISTS ix_memory_embeddings_hnsw ON "
                            "memory_embeddings USING hnsw (embedding vector_cosine_ops)"))
