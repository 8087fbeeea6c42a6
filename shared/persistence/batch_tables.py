"""The ``batches`` table (migration 0012), on the same ``metadata`` as ``tables.py``.

A batch is what one ``POST /v1/batches`` accepted: its tenant, how many items it held,
how many became goals, and per item ``{"index", "id", "goal_id", "status_code",
"error"}`` (the client's id, the goal it became or why it was refused). Its goals carry
``goals.batch_id``.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, Table, func
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.persistence.tables import metadata

batches = Table(
    "batches",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), ForeignKey("tenants.id"), nullable=False),
    Column("total", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("items", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_batches_tenant_created", "tenant_id", "created_at"),
)
