"""``GET /v1/sessions/{session_id}``: a session's history (its goals with their answers,
and the running summary of the older ones).

Needs the ``goals:read`` scope; a session belongs to the tenant that submitted its
goals, and another tenant's session answers 404 like an unknown one. The read itself
is :func:`shared.memory.sessions.get_session`, the same call ``taskforce session show``
makes.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at runtime.
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api_gateway.auth import requires
from api_gateway.errors import responses
from shared.auth import GOALS_READ, Principal
from shared.domain.models import SESSION_ID_PATTERN
from shared.domain.sessions import SessionView
from shared.memory.sessions import get_session

Reader = Annotated[Principal, Depends(requires(GOALS_READ))]
SessionId = Annotated[str, Path(pattern=SESSION_ID_PATTERN, max_length=128)]


def build_router() -> APIRouter:
    """The session routes."""
    router = APIRouter(tags=["sessions"], responses=responses(404))

    @router.get("/v1/sessions/{session_id}", response_model=SessionView)
    def read(session_id: SessionId, principal: Reader) -> SessionView:
        """The session's goals (oldest first, at most ``SESSION_VIEW_MAX_GOALS``, the
        newest), their answers, and the running summary of the older ones."""
        return get_session(session_id, tenant_id=principal.tenant_id)

    return router
