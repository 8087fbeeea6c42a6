"""batches, goals.batch_id, and a change sequence on steps for event streams

``batches`` holds what ``POST /v1/batches`` accepted: its tenant, size, and one entry
per item (the client's id, the goal it became, or why it was refused). ``goals.batch_id``
ties a goal to the batch that submitted it. ``steps.change_seq`` is set from one
sequence by a trigger whenever a step is inserted or its status or attempt changes, so
``GET /v1/goals/{id}/events`` can send each change once, in order, and resume after a
``Last-Event-ID``, without any change to the workers' SQL. The trigger fires on every
UPDATE of a step (lease heartbeats too) but only draws a number when status or attempt
moved. An index on ``(tenant_id, created_at, id)`` serves the listing's keyset pages.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Raw SQL: a sequence, a trigger function and its trigger have no SQLAlchemy Core form.
_FUNCTION = """
CREATE OR REPLACE FUNCTION taskforce_step_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status
            OR NEW.attempt IS DISTINCT FROM OLD.attempt THEN
        NEW.change_seq := nextval('step_change_seq');
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
"""
_TRIGGER = """
CREATE TRIGGER steps_change_seq BEFORE INSERT OR UPDATE ON steps
FOR EACH ROW EXECUTE FUNCTION taskforce_step_changed()
"""


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("tenants.id"),
                  nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("items", JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )
    op.create_index("ix_batches_tenant_created", "batches", ["tenant_id", "created_at"])
    op.add_column("goals", sa.Column("batch_id", UUID(as_uuid=True),
                                     sa.ForeignKey("batches.id"), nullable=True))
    op.create_index("ix_goals_batch", "goals", ["batch_id"],
                    postgresql_where=sa.text("batch_id IS NOT NULL"))
    op.create_index("ix_goals_tenant_created_id", "goals", ["tenant_id", "created_at", "id"])
    op.execute("CREATE SEQUENCE step_change_seq")
    op.add_column("steps", sa.Column("change_seq", sa.BigInteger(), nullable=True))
    op.execute(_FUNCTION)
    op.execute(_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS steps_change_seq ON steps")
    op.execute("DROP FUNCTION IF EXISTS taskforce_step_changed()")
    op.drop_column("steps", "change_seq")
    op.execute("DROP SEQUENCE IF EXISTS step_change_seq")
    op.drop_index("ix_goals_tenant_created_id", table_name="goals")
    op.drop_index("ix_goals_batch", table_name="goals")
    op.drop_column("goals", "batch_id")
    op.drop_index("ix_batches_tenant_created", table_name="batches")
    op.drop_table("batches")
