"""Reading a session: what the gateway's ``GET /v1/sessions/{id}`` and
``taskforce session show`` call."""

from __future__ import annotations

import re
import uuid

from shared.domain.models import SESSION_ID_PATTERN
from shared.domain.sessions import SessionView
from shared.errors import SessionNotFoundError
from shared.persistence import keys as key_store
from shared.persistence import sessions as session_store
from shared.persistence.db import get_engine
from shared.settings import get_settings


def get_session(session_id: str, *, tenant_id: uuid.UUID | None = None) -> SessionView:
    """The session ``session_id`` of ``tenant_id`` (None: the ``default`` tenant, the
    operator's CLI) with its newest ``SESSION_VIEW_MAX_GOALS`` goals.

    Raises:
        SessionNotFoundError: The tenant has no such session (another tenant's session
            is reported the same way, 404).
    """
    if not re.fullmatch(SESSION_ID_PATTERN, session_id):
        raise SessionNotFoundError(f"no session with id {session_id[:128]}")
    with get_engine().connect() as connection:
        return session_store.session_view(
            connection, tenant_id=tenant_id or key_store.DEFAULT_TENANT_ID,
            session_id=session_id, max_goals=get_settings().session_view_max_goals)
