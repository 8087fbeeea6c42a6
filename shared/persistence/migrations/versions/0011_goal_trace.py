"""a goal's trace

``goals.trace_id`` (32 hex digits) names the OpenTelemetry trace a goal runs in, shown
in its JSON; ``goals.traceparent`` is the W3C trace context of its submission span, from
which the reconciler and approvals resume the goal's trace. Both stay NULL when tracing
is off.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("goals", sa.Column("trace_id", sa.Text(), nullable=True))
    op.add_column("goals", sa.Column("traceparent", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("goals", "traceparent")
    op.drop_column("goals", "trace_id")
