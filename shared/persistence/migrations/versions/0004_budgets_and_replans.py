"""per-goal budgets and replanning

Goals get their token and USD budgets, the amounts reserved by LLM calls in flight
(reserved before a call at its worst case, settled when it is recorded), and a count of
replans.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("goals", sa.Column("max_tokens", sa.BigInteger(), nullable=True))
    op.add_column("goals", sa.Column("max_cost_usd", sa.Numeric(14, 8), nullable=True))
    op.add_column("goals", sa.Column("reserved_tokens", sa.BigInteger(), nullable=False,
                                     server_default="0"))
    op.add_column("goals", sa.Column("reserved_usd", sa.Numeric(14, 8), nullable=False,
                                     server_default="0"))
    op.add_column("goals", sa.Column("replans", sa.Integer(), nullable=False,
                                     server_default="0"))
    op.add_column("goals", sa.Column("max_replans", sa.Integer(), nullable=True))


def downgrade() -> None:
    for column in ("max_replans", "replans", "reserved_usd", "reserved_tokens", "max_cost_usd", "max_tokens"):
        op.drop_column("goals", column)
