"""session and episodic memory

``goals.session_id`` names the session a goal belongs to (per tenant) and
``goals.reused_plan_from`` the earlier goal whose plan it reused; ``sessions`` holds each
session's running summary; ``episode_index`` indexes every finished goal (full text,
template, outcome, plan) for episodic examples and plan reuse.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("goals", sa.Column("session_id", sa.Text(), nullable=True))
    op.add_column("goals", sa.Column("reused_plan_from", UUID(as_uuid=True), nullable=True))
    op.create_index("ix_goals_tenant_session", "goals",
                    ["tenant_id", "session_id", "created_at"],
                    postgresql_where=sa.text("session_id IS NOT NULL"))
    op.create_table(
        "sessions",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("tenants.id"),
                  nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text()),
        sa.Column("summarized_through", sa.DateTime(timezone=True)),
        sa.Column("summarized_goals", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_sessions"),
    )
    op.create_table(
        "episode_index",
        sa.Column("goal_id", UUID(as_uuid=True),
                  sa.ForeignKey("goals.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tenant_id", UUID(as_uuid=True)),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("entities", JSONB(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text()),
        sa.Column("plan", JSONB()),
        sa.Column("reusable", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("tsv", TSVECTOR(),
                  sa.Computed("to_tsvector('english', text)", persisted=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )
    op.create_index("ix_episode_index_tsv", "episode_index", ["tsv"],
                    postgresql_using="gin")
    op.create_index("ix_episode_index_template", "episode_index",
                    ["tenant_id", "template", "created_at"])


def downgrade() -> None:
    op.drop_table("episode_index")
    op.drop_table("sessions")
    op.drop_index("ix_goals_tenant_session", table_name="goals")
    op.drop_column("goals", "reused_plan_from")
    op.drop_column("goals", "session_id")
