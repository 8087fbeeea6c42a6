"""worker_backlog view: the work waiting for or held by workers, for autoscalers

One row: steps ``queued`` (published or about to be, not yet claimed), steps
``running`` (claimed under a lease), goals waiting for a planner (``pending``,
``planning``, ``replanning``: ``plan_goal`` runs on the workers too) and their sum,
``work_items``. KEDA's ``postgresql`` scaler asks ``SELECT work_items FROM
worker_backlog`` (deploy/k8s/base/worker-scaledobject.yaml). Postgres is the system of
record: unlike the length of the Redis list, it counts messages a worker has prefetched
or holds with a countdown, and every priority queue. Each count is an index-only
scan of an existing index (``ix_steps_queued``, ``ix_goals_status_created``), so the
query costs little however many finished steps the tables keep (0.3 ms on 200,000
steps, deploy/k8s/README.md). A view keeps the query stable while the tables change.

Revision ID: 0016
Revises: 0013
Create Date: 2026-11-21
"""

from alembic import op

revision = "0016"
down_revision = "0013"
branch_labels = None
depends_on = None

# A view has no SQLAlchemy Core DDL construct: plain SQL is the way to create one.
VIEW = """
CREATE OR REPLACE VIEW worker_backlog AS
SELECT q.queued_steps, r.running_steps, p.planning_goals,
       q.queued_steps + r.running_steps + p.planning_goals AS work_items
FROM (SELECT count(*) AS queued_steps FROM steps WHERE status = 'queued') AS q,
     (SELECT count(*) AS running_steps FROM steps WHERE status = 'running') AS r,
     (SELECT count(*) AS planning_goals FROM goals
      WHERE status IN ('pending', 'planning', 'replanning')) AS p
"""


def upgrade() -> None:
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS worker_backlog")
