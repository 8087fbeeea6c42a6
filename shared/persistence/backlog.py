"""The workers' backlog (the ``worker_backlog`` view, migration 0016): what an
autoscaler such as KEDA scales the worker pool on."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, column, select, table
from sqlalchemy.engine import Connection

# The view, for SQLAlchemy Core (it is created by migration 0016, not by metadata).
worker_backlog_view = table(
    "worker_backlog",
    column("queued_steps", BigInteger),
    column("running_steps", BigInteger),
    column("planning_goals", BigInteger),
    column("work_items", BigInteger),
)

# The query KEDA's postgresql trigger runs (deploy/k8s/base/worker-scaledobject.yaml);
# tests/test_deploy_manifests.py checks that the manifest carries exactly this text.
KEDA_QUERY = "SELECT work_items FROM worker_backlog"


@dataclass(frozen=True)
class Backlog:
    """Work waiting for or held by workers, across every tenant.

    Attributes:
        queued_steps: Steps published (or about to be) and not yet claimed.
        running_steps: Steps claimed under a lease.
        planning_goals: Goals waiting for, or in, planning.
        work_items: The sum of the three: what the worker pool has to do.
    """

    queued_steps: int
    running_steps: int
    planning_goals: int
    work_items: int


def read_backlog(connection: Connection) -> Backlog:
    """The current :class:`Backlog` (one row of the view; three index range counts)."""
    row = connection.execute(select(worker_backlog_view)).one()
    return Backlog(queued_steps=row.queued_steps, running_steps=row.running_steps,
                   planning_goals=row.planning_goals, work_items=row.work_items)
