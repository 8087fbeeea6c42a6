"""tenant quotas and ceilings

Each tenant may override the global quota settings (NULL: the setting applies):
goals per minute, goals in flight, USD per UTC day, caps on a goal's max_tokens and
max_cost_usd, and the models it may use (comma-separated ``provider:model`` patterns).
``tenant_daily_spend`` holds, per tenant and UTC day, the USD its recorded LLM calls
cost and the USD its calls in flight have reserved; a partial index makes counting a
tenant's goals in flight cheap.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_IN_FLIGHT = "status NOT IN ('succeeded', 'failed', 'cancelled')"


def upgrade() -> None:
    op.add_column("tenants", sa.Column("goals_per_minute", sa.Integer(), nullable=True))
    op.add_column("tenants", sa.Column("max_goals_in_flight", sa.Integer(), nullable=True))
    op.add_column("tenants", sa.Column("daily_usd", sa.Numeric(14, 8), nullable=True))
    op.add_column("tenants", sa.Column("max_tokens_per_goal", sa.BigInteger(), nullable=True))
    op.add_column("tenants", sa.Column("max_cost_usd_per_goal", sa.Numeric(14, 8),
                                       nullable=True))
    op.add_column("tenants", sa.Column("allowed_models", sa.Text(), nullable=True))
    op.create_table(
        "tenant_daily_spend",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("tenants.id"),
                  nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("spent_usd", sa.Numeric(14, 8), nullable=False, server_default="0"),
        sa.Column("reserved_usd", sa.Numeric(14, 8), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("tenant_id", "day", name="pk_tenant_daily_spend"),
    )
    op.create_index("ix_goals_tenant_in_flight", "goals", ["tenant_id"],
                    postgresql_where=sa.text(_IN_FLIGHT))


def downgrade() -> None:
    op.drop_index("ix_goals_tenant_in_flight", table_name="goals")
    op.drop_table("tenant_daily_spend")
    for column in ("allowed_models", "max_cost_usd_per_goal", "max_tokens_per_goal",
                   "daily_usd", "max_goals_in_flight", "goals_per_minute"):
        op.drop_column("tenants", column)
