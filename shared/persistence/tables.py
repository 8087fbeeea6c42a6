"""Table definitions (SQLAlchemy Core). The schema itself is created by Alembic.

Every goal and step lives here; Celery's messages only carry ``(goal_id, step_id)``.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID

metadata = MetaData()

tenants = Table(
    "tenants",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Quotas (migration 0008; NULL: the global setting, see shared.quotas).
    Column("goals_per_minute", Integer),
    Column("max_goals_in_flight", Integer),
    Column("daily_usd", Numeric(14, 8)),
    Column("max_tokens_per_goal", BigInteger),
    Column("max_cost_usd_per_goal", Numeric(14, 8)),
    Column("allowed_models", Text),
    Column("memory_max_items", BigInteger),  # migration 0009 (NULL: the setting)
    UniqueConstraint("name", name="uq_tenants_name"),
)

tenant_daily_spend = Table(
    "tenant_daily_spend",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), ForeignKey("tenants.id"), nullable=False),
    Column("day", Date, nullable=False),
    Column("spent_usd", Numeric(14, 8), nullable=False, server_default="0"),
    Column("reserved_usd", Numeric(14, 8), nullable=False, server_default="0"),
    PrimaryKeyConstraint("tenant_id", "day", name="pk_tenant_daily_spend"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), ForeignKey("tenants.id"), nullable=False),
    Column("secret_sha256", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    Index("ix_api_keys_tenant", "tenant_id"),
)

goals = Table(
    "goals",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("text", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("metadata", JSONB, nullable=False, server_default="{}"),
    Column("requested_plan", JSONB),
    Column("idempotency_key", Text),
    Column("request_sha256", Text),
    Column("answer", Text),
    Column("error", Text),
    Column("plan_version", Integer, nullable=False, server_default="0"),
    Column("max_tokens", BigInteger),
    Column("max_cost_usd", Numeric(14, 8)),
    Column("reserved_tokens", BigInteger, nullable=False, server_default="0"),
    Column("reserved_usd", Numeric(14, 8), nullable=False, server_default="0"),
    Column("replans", Integer, nullable=False, server_default="0"),
    Column("max_replans", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("tenant_id", UUID(as_uuid=True), ForeignKey("tenants.id")),
    # Execution mode, ``dag`` or ``react`` (migration 0013).
    Column("mode", Text, nullable=False, server_default="dag"),
    # The goal's trace (migration 0011): trace id (32 hex) and W3C traceparent.
    Column("trace_id", Text),
    Column("traceparent", Text),
    Column("batch_id", UUID(as_uuid=True)),  # batches.id (migration 0012, batch_tables.py)
    # Session memory and plan reuse (migration 0010, shared.persistence.session_tables).
    Column("session_id", Text),
    Column("reused_plan_from", UUID(as_uuid=True)),
    Index("ix_goals_status_created", "status", "created_at"),
    Index("ix_goals_tenant_created", "tenant_id", "created_at"),
    Index("ix_goals_tenant_in_flight", "tenant_id",
          postgresql_where=text("status NOT IN ('succeeded', 'failed', 'cancelled')")),
    UniqueConstraint("tenant_id", "idempotency_key", name="uq_goals_tenant_idempotency_key"),
    Index("ix_goals_tenant_session", "tenant_id", "session_id", "created_at",
          postgresql_where=text("session_id IS NOT NULL")),
)

plans = Table(
    "plans",
    metadata,
    Column("goal_id", UUID(as_uuid=True), ForeignKey("goals.id", ondelete="CASCADE")),
    Column("version", Integer, nullable=False),
    Column("plan", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("goal_id", "version"),
)

steps = Table(
    "steps",
    metadata,
    Column("goal_id", UUID(as_uuid=True), ForeignKey("goals.id", ondelete="CASCADE")),
    Column("step_id", Integer, nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("kind", Text, nullable=False),
    Column("tool", Text),
    Column("args", JSONB, nullable=False),
    Column("depends_on", ARRAY(Integer), nullable=False),
    Column("description", Text),
    Column("status", Text, nullable=False),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("lease_owner", Text),
    Column("lease_expires_at", DateTime(timezone=True)),
    Column("queued_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("result", JSONB),
    Column("error", Text),
    # Approval of steps whose tool requires it (migration 0007).
    Column("approval_requested_at", DateTime(timezone=True)),
    Column("approval", Text),
    Column("approval_by", Text),
    Column("approval_at", DateTime(timezone=True)),
    Column("approval_reason", Text),
    # Set by a trigger when status or attempt changes (migration 0012): event streams.
    Column("change_seq", BigInteger),
    PrimaryKeyConstraint("goal_id", "step_id"),
    Index("ix_steps_status_lease", "status", "lease_expires_at"),
    Index("ix_steps_queued", "status", "queued_at"),
)

step_runs = Table(
    "step_runs",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("goal_id", UUID(as_uuid=True), nullable=False),
    Column("step_id", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("worker", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("outcome", Text),
    Column("error", Text),
    Index("ix_step_runs_goal_step", "goal_id", "step_id"),
)

llm_calls = Table(
    "llm_calls",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("goal_id", UUID(as_uuid=True), ForeignKey("goals.id", ondelete="CASCADE")),
    Column("step_id", Integer),
    Column("purpose", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cached_tokens", Integer, nullable=False, server_default="0"),
    Column("cost_usd", Numeric(14, 8), nullable=False),
    Column("latency_s", Float, nullable=False),
    Column("simulated", Boolean, nullable=False),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_llm_calls_goal", "goal_id"),
    Index("ix_llm_calls_created", "created_at"),
)

episodes = Table(
    "episodes",
    metadata,
    Column(
        "goal_id", UUID(as_uuid=True), ForeignKey("goals.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("episode", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

documents = Table(
    "documents",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("content_sha256", Text, nullable=False),
    Column(
        "tsv",
        TSVECTOR,
        Computed("to_tsvector('english', title || ' ' || body)", persisted=True),
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("content_sha256", name="uq_documents_content"),
    Index("ix_documents_tsv", "tsv", postgresql_using="gin"),
)

cost_rollups = Table(
    "cost_rollups",
    metadata,
    Column("day", Date, nullable=False),
    Column("provider", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("calls", Integer, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cost_usd", Numeric(16, 8), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("day", "provider", "model"),
)
