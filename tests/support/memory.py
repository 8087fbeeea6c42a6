"""Helpers of the memory tests."""

from __future__ import annotations

import uuid

from shared.persistence.db import get_engine
from shared.persistence.keys import ensure_tenant


def new_tenant(label: str) -> uuid.UUID:
    """A new tenant named ``<label>-<random>``; returns its id."""
    with get_engine().begin() as connection:
        return ensure_tenant(connection, name=f"{label}-{uuid.uuid4().hex[:8]}")
