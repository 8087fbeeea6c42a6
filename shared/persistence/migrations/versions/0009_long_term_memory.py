"""long-term memory

``memory_items`` holds facts per tenant and namespace (add-only; superseded facts keep a
``valid_to``; ``expires_at`` is the TTL), with a generated ``tsvector`` under a GIN index
for full-text recall, a unique index on the live content hash (exact de-duplication on
write) and partial indexes that let cleanup find expired, superseded and unchecked rows
in bounded batches. ``memory_usage`` counts items per (tenant, namespace), kept exact by
statement-level triggers with transition tables (one counter update per statement, not
per row), so quotas never count a tenant's rows. ``memory_cleanup_runs`` records every
cleanup pass. ``tenants.memory_max_items`` overrides the per-tenant item quota.

Where the server offers the ``vector`` extension (pgvector; the embedded PostgreSQL has
it), the extension is created and ``memory_embeddings`` holds one ``vector(N)`` per item
under an HNSW index (cosine distance), N being ``MEMORY_EMBEDDING_DIM`` when this runs.
Where it does not (or cannot be created), the table is left out and recall is
full-text only; the application reads which case holds from the database itself.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21
"""

import logging

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

_USAGE_FUNCTIONS = """
CREATE FUNCTION taskforce_memory_usage_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO memory_usage (tenant_id, namespace, items)
    SELECT tenant_id, namespace, count(*) FROM added GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (tenant_id, namespace)
    DO UPDATE SET items = memory_usage.items + EXCLUDED.items;
    RETURN NULL;
END $$;

CREATE FUNCTION taskforce_memory_usage_removed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    -- One counter row at a time, in key order: concurrent statements lock them in the
    -- same order, so they cannot deadlock.
    FOR r IN SELECT tenant_id, namespace, count(*) AS n FROM removed
             GROUP BY 1, 2 ORDER BY 1, 2 LOOP
        UPDATE memory_usage SET items = items - r.n
        WHERE tenant_id = r.tenant_id AND namespace = r.namespace;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER memory_usage_added AFTER INSERT ON memory_items
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION taskforce_memory_usage_added();
CREATE TRIGGER memory_usage_removed AFTER DELETE ON memory_items
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION taskforce_memory_usage_removed();
"""


def _embedding_dim() -> int:
    from shared.settings import get_settings

    return get_settings().memory_embedding_dim


def _create_vector_table() -> None:
    """Create the extension and ``memory_embeddings`` if the server offers pgvector."""
    bind = op.get_bind()
    available = bind.execute(sa.text(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")).scalar()
    if not available:
        log.warning("PostgreSQL has no pgvector here: memory recall will be full-text only")
        return
    savepoint = bind.begin_nested()
    try:
        bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    except sa.exc.DBAPIError:
        savepoint.rollback()
        log.warning("CREATE EXTENSION vector failed (privileges?): memory recall will be "
                    "full-text only")
        return
    savepoint.commit()
    dim = int(_embedding_dim())
    # Raw SQL: the vector type belongs to the extension and is unknown to SQLAlchemy.
    bind.execute(sa.text(f"""
        CREATE TABLE memory_embeddings (
            item_id uuid PRIMARY KEY REFERENCES memory_items (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL,
            namespace text NOT NULL,
            embedding vector({dim}) NOT NULL
        )"""))
    bind.execute(sa.text("CREATE INDEX ix_memory_embeddings_hnsw ON memory_embeddings "
                         "USING hnsw (embedding vector_cosine_ops)"))


def upgrade() -> None:
    op.add_column("tenants", sa.Column("memory_max_items", sa.BigInteger(), nullable=True))
    op.create_table(
        "memory_items",
        sa.Column("id", UUID(as_uuid=True), primary_key=True,
                  server_default=sa.text("gen_random_uuid()")),
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("tenants.id"),
                  nullable=False),
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.Text(), nullable=False),
        sa.Column("norm_sha256", sa.Text(), nullable=False),
        sa.Column("tsv", TSVECTOR(), sa.Computed("to_tsvector('english', content)",
                                                 persisted=True)),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("valid_to", sa.DateTime(timezone=True)),
        sa.Column("superseded_by", UUID(as_uuid=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("embedding_model", sa.Text()),
        sa.Column("embedding_simulated", sa.Boolean(), nullable=False,
                  server_default="false"),
        sa.Column("checked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("uq_memory_items_live_content", "memory_items",
                    ["tenant_id", "namespace", "content_sha256"], unique=True,
                    postgresql_where=sa.text("valid_to IS NULL"))
    op.create_index("ix_memory_items_norm", "memory_items",
                    ["tenant_id", "namespace", "norm_sha256"],
                    postgresql_where=sa.text("valid_to IS NULL"))
    op.create_index("ix_memory_items_tenant_ns_created", "memory_items",
                    ["tenant_id", "namespace", "created_at"])
    op.create_index("ix_memory_items_tsv", "memory_items", ["tsv"], postgresql_using="gin")
    op.create_index("ix_memory_items_expires", "memory_items", ["expires_at"],
                    postgresql_where=sa.text("expires_at IS NOT NULL"))
    op.create_index("ix_memory_items_superseded", "memory_items", ["valid_to"],
                    postgresql_where=sa.text("valid_to IS NOT NULL"))
    op.create_index("ix_memory_items_unchecked", "memory_items", ["created_at"],
                    postgresql_where=sa.text("checked_at IS NULL"))
    op.create_table(
        "memory_usage",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("items", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("tenant_id", "namespace", name="pk_memory_usage"),
    )
    op.create_table(
        "memory_cleanup_runs",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("counts", JSONB(), nullable=False),
        sa.Column("phase_seconds", JSONB(), nullable=False),
        sa.Column("max_statement_ms", sa.Float(), nullable=False),
    )
    op.execute(_USAGE_FUNCTIONS)
    _create_vector_table()


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS memory_embeddings")
    op.execute("DROP TRIGGER IF EXISTS memory_usage_removed ON memory_items")
    op.execute("DROP TRIGGER IF EXISTS memory_usage_added ON memory_items")
    op.execute("DROP FUNCTION IF EXISTS taskforce_memory_usage_removed()")
    op.execute("DROP FUNCTION IF EXISTS taskforce_memory_usage_added()")
    op.drop_table("memory_cleanup_runs")
    op.drop_table("memory_usage")
    op.drop_table("memory_items")
    op.drop_column("tenants", "memory_max_items")
