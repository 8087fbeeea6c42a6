"""tenants and API keys

Tenants own goals and their idempotency keys; API keys belong to a tenant and carry
scopes. Only the SHA-256 of a key's secret is stored. A tenant named ``default``, with a
fixed id, owns the goals submitted while authentication is off (and by the CLI).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Same value as shared.persistence.keys.DEFAULT_TENANT_ID (migrations do not import it).
DEFAULT_TENANT_ID = "00000000-0000-0000-0000-000000000001"


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.execute(sa.text(
        f"INSERT INTO tenants (id, name) VALUES ('{DEFAULT_TENANT_ID}', 'default')"
    ))
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text(), primary_key=True),
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("tenants.id"),
                  nullable=False),
        sa.Column("secret_sha256", sa.Text(), nullable=False),
        sa.Column("scopes", ARRAY(sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant_id"])
    op.add_column("goals", sa.Column("tenant_id", UUID(as_uuid=True),
                                     sa.ForeignKey("tenants.id"), nullable=True))
    op.drop_constraint("uq_goals_idempotency_key", "goals", type_="unique")
    op.create_unique_constraint("uq_goals_tenant_idempotency_key", "goals",
                                ["tenant_id", "idempotency_key"])
    op.create_index("ix_goals_tenant_created", "goals", ["tenant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_goals_tenant_created", table_name="goals")
    op.drop_constraint("uq_goals_tenant_idempotency_key", "goals", type_="unique")
    op.create_unique_constraint("uq_goals_idempotency_key", "goals", ["idempotency_key"])
    op.drop_column("goals", "tenant_id")
    op.drop_index("ix_api_keys_tenant", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("tenants")
