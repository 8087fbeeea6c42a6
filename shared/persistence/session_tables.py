"""Tables of session and episodic memory (migration 0010), on the same ``metadata`` as
:mod:`shared.persistence.tables`.

* ``sessions``: one row per (tenant, session id); its running summary of the goals that
  are no longer shown one by one, written by the compaction job
  (:mod:`shared.memory.compaction`), never on the request path.
* ``episode_index``: one row per finished goal: its text (full-text indexed), its
  template and entities (:mod:`shared.memory.templates`), its outcome and answer, and
  the plan that ran, so that the planner finds similar successful episodes of the same
  tenant and can reuse a plan.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID

from shared.persistence.tables import metadata

sessions = Table(
    "sessions",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), ForeignKey("tenants.id"), nullable=False),
    Column("id", Text, nullable=False),
    Column("summary", Text),
    # Goals folded into the summary: every goal of the session created at or before
    # this instant (NULL: none yet), and how many they are.
    Column("summarized_through", DateTime(timezone=True)),
    Column("summarized_goals", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant_id", "id", name="pk_sessions"),
)

episode_index = Table(
    "episode_index",
    metadata,
    Column("goal_id", UUID(as_uuid=True), ForeignKey("goals.id", ondelete="CASCADE"),
           primary_key=True),
    Column("tenant_id", UUID(as_uuid=True)),
    Column("text", Text, nullable=False),
    Column("template", Text, nullable=False),
    Column("entities", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("answer", Text),
    Column("plan", JSONB),
    # True when the plan may serve another goal: the goal succeeded with its first plan,
    # which a planner wrote (or reused) without session context.
    Column("reusable", Boolean, nullable=False, server_default="false"),
    Column("tsv", TSVECTOR, Computed("to_tsvector('english', text)", persisted=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_episode_index_tsv", "tsv", postgresql_using="gin"),
    Index("ix_episode_index_template", "tenant_id", "template", "created_at"),
)
