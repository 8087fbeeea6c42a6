"""approval of risky steps

A step whose tool requires approval waits in status ``awaiting_approval`` (step
statuses are plain text, no constraint to change) from ``approval_requested_at`` until
a person approves or rejects it, or the reconciler rejects it after
``APPROVAL_TIMEOUT_S``: ``approval`` ('approved' or 'rejected'), ``approval_by`` (an API
key id, 'cli', 'api' or 'timeout'), ``approval_at`` and ``approval_reason`` record the
decision.

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("steps", sa.Column("approval_requested_at", sa.DateTime(timezone=True),
                                     nullable=True))
    op.add_column("steps", sa.Column("approval", sa.Text(), nullable=True))
    op.add_column("steps", sa.Column("approval_by", sa.Text(), nullable=True))
    op.add_column("steps", sa.Column("approval_at", sa.DateTime(timezone=True),
                                     nullable=True))
    op.add_column("steps", sa.Column("approval_reason", sa.Text(), nullable=True))
    op.create_check_constraint("ck_steps_approval", "steps",
                               "approval IS NULL OR approval IN ('approved', 'rejected')")


def downgrade() -> None:
    op.drop_constraint("ck_steps_approval", "steps", type_="check")
    for column in ("approval_reason", "approval_at", "approval_by", "approval",
                   "approval_requested_at"):
        op.drop_column("steps", column)
