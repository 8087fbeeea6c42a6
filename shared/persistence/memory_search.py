"""Recall in SQL: full-text and pgvector candidates fused by reciprocal rank.

Reciprocal rank fusion (Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms
Condorcet and individual Rank Learning Methods", SIGIR 2009): each retriever ranks its
candidates 1, 2, ...; an item's score is the sum over retrievers of ``1 / (k + rank)``,
with ``k = 60`` as in the paper (``MEMORY_RRF_K``). Ranks, not scores, are fused, so the
full-text rank (``ts_rank_cd``) and the cosine distance need no common scale.

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

_FULL_TEXT = f"""
    SELECT m.id, row_number() OVER (ORDER BY ts_rank_cd(m.tsv, q.tsq) DESC, m.id) AS rank
    FROM memory_items m,
         (SELECT replace(plainto_tsquery('english', :query)::text, '&', '|')::tsquery
          AS tsq) q
    WHERE q.tsq::text <> '' AND m.tsv @@ q.tsq AND {_SCOPE} AND {_LIVE}
    ORDER BY rank LIMIT :candidates
"""

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
    WITH full_text AS ({full_text}), vector AS ({vector}),
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
_HYBRID = text(_FUSED.format(full_text=_FULL_TEXT, vector=_VECTOR, live=_LIVE))
_FULL_TEXT_ONLY = text(_FUSED.format(
    full_text=_FULL_TEXT, vector="SELECT NULL::uuid AS id, 0::bigint AS rank WHERE false",
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
        candidates: Candidates each retriever contributes to the fusion.
        k: The fusion's constant (60 in the paper).
        max_distance: Vector candidates farther than this cosine distance (0 to 2) are
            left out, so that a query unlike every item does not recall them all.

    Returns:
        Items best first: the item's columns plus ``score`` (the fused score),
        ``full_text_rank`` and ``vector_rank`` (None where that retriever missed it).
    """
    params: dict[str, Any] = {"tenant": tenant_id, "ns": namespace, "query": query,
                              "limit": limit, "candidates": candidates, "k": k,
                              "max_distance": max_distance}
    if vector is None:
        statement = _FULL_TEXT_ONLY
    else:
        set_ef_search(connection, candidates)
        statement, params["vector"] = _HYBRID, vector_literal(vector)
    return [dict(row) for row in connection.execute(statement, params).mappings()]
