"""goal execution mode

``goals.mode`` says how a goal runs: ``dag`` (planned once into a DAG whose independent
steps run in parallel) or ``react`` (one LLM call chooses each next action from the
observations so far; each action is a step appended to the goal's plan). Existing goals
are ``dag``.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("goals", sa.Column("mode", sa.Text(), nullable=False, server_default="dag"))
    op.create_check_constraint("ck_goals_mode", "goals", "mode IN ('dag', 'react')")


def downgrade() -> None:
    op.drop_constraint("ck_goals_mode", "goals", type_="check")
    op.drop_column("goals", "mode")
