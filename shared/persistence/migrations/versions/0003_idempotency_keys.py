"""idempotency keys on goals

``POST /v1/goals`` with an ``Idempotency-Key`` header stores the key and a SHA-256 of
the request body; the same key again returns the same goal, a different body is refused.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("goals", sa.Column("idempotency_key", sa.Text(), nullable=True))
    op.add_column("goals", sa.Column("request_sha256", sa.Text(), nullable=True))
    op.create_unique_constraint("uq_goals_idempotency_key", "goals", ["idempotency_key"])
    op.create_index("ix_steps_queued", "steps", ["status", "queued_at"])


def downgrade() -> None:
    op.drop_index("ix_steps_queued", table_name="steps")
    op.drop_constraint("uq_goals_idempotency_key", "goals", type_="unique")
    op.drop_column("goals", "request_sha256")
    op.drop_column("goals", "idempotency_key")
