"""Tables of long-term memory (migration 0009), on the same ``metadata`` as ``tables.py``.

* ``memory_items``: one fact per row, scoped by tenant and namespace. Add-only: a newer
  fact supersedes an older one by setting the older one's ``valid_to`` and
  ``superseded_by`` (kept as history, never overwritten). ``expires_at`` is the TTL;
  cleanup deletes expired rows (reads skip them between sweeps).
* ``memory_usage``: items per (tenant, namespace), kept exact by statement-level
  triggers on ``memory_items`` (migration 0009), so quotas and caps never count rows.
* ``memory_cleanup_runs``: one row per cleanup pass, with its counts and seconds.
* ``memory_embeddings`` (only on servers with pgvector): one ``vector(N)`` per item,
  created by the migration when the ``vector`` extension is available; its column type
  is unknown to SQLAlchemy, so it is reached through raw SQL in
  :mod:`shared.persistence.memory_vectors` and not declared here.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID

from shared.persistence.tables import metadata

LIVE = "valid_to IS NULL"  # not superseded (expiry is checked against now() separately)

memory_items = Table(
    "memory_items",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("tenant_id", UUID(as_uuid=True), ForeignKey("tenants.id"), nullable=False),
    Column("namespace", Text, nullable=False),
    Column("content", Text, nullable=False),
    # SHA-256 of the exact content, and of its normalised form (lower case, words only):
    # the keys of exact de-duplication (on write) and near-duplicates (in cleanup).
    Column("content_sha256", Text, nullable=False),
    Column("norm_sha256", Text, nullable=False),
    Column("tsv", TSVECTOR, Computed("to_tsvector('english', content)", persisted=True)),
    Column("source", Text, nullable=False),  # 'api', 'cli', 'goal:<uuid>'
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("valid_to", DateTime(timezone=True)),
    Column("superseded_by", UUID(as_uuid=True)),
    Column("expires_at", DateTime(timezone=True)),
    Column("embedding_model", Text),  # None: no embedding stored
    Column("embedding_simulated", Boolean, nullable=False, server_default="false"),
    Column("checked_at", DateTime(timezone=True)),  # None: cleanup's duplicate check pending
    Index("uq_memory_items_live_content", "tenant_id", "namespace", "content_sha256",
          unique=True, postgresql_where=text(LIVE)),
    Index("ix_memory_items_norm", "tenant_id", "namespace", "norm_sha256",
          postgresql_where=text(LIVE)),
    Index("ix_memory_items_tenant_ns_created", "tenant_id", "namespace", "created_at"),
    Index("ix_memory_items_tsv", "tsv", postgresql_using="gin"),
    Index("ix_memory_items_expires", "expires_at",
          postgresql_where=text("expires_at IS NOT NULL")),
    Index("ix_memory_items_superseded", "valid_to", postgresql_where=text("valid_to IS NOT NULL")),
    Index("ix_memory_items_unchecked", "created_at", postgresql_where=text("checked_at IS NULL")),
)

memory_usage = Table(
    "memory_usage",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("namespace", Text, nullable=False),
    Column("items", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("tenant_id", "namespace", name="pk_memory_usage"),
)

memory_cleanup_runs = Table(
    "memory_cleanup_runs",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("counts", JSONB, nullable=False),  # {phase: {count name: n}}
    Column("phase_seconds", JSONB, nullable=False),  # {phase: seconds}
    Column("max_statement_ms", Float, nullable=False),
)
