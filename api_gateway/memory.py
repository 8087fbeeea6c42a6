"""Long-term memory over HTTP: ``/v1/memory``.

* ``POST /v1/memory`` ``{"namespace", "content", "ttl_s"?, "supersedes"?}`` → 201 with
  the item (200 when the same content was live already: de-duplicated, same id).
* ``GET /v1/memory?namespace=&q=&limit=``: recall (hybrid or full-text) with ``q``;
  without ``q``, the namespace's newest live items.
* ``GET /v1/memory/{id}``: one item, current or superseded (``valid_to`` set).
* ``DELETE /v1/memory/{id}``: delete it for good (204).

Scopes: ``memory:read`` for the GETs, ``memory:write`` for POST and DELETE. Every item is
the tenant's own: another tenant's id answers 404, like an unknown or expired one. A
write over the tenant's or the namespace's item cap answers 429 with the reason.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at runtime.
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from api_gateway.auth import requires
from api_gateway.errors import responses
from shared.auth import MEMORY_READ, MEMORY_WRITE, Principal
from shared.memory import store as memory

Reader = Annotated[Principal, Depends(requires(MEMORY_READ))]
Writer = Annotated[Principal, Depends(requires(MEMORY_WRITE))]


def build_router() -> APIRouter:
    """The memory routes."""
    router = APIRouter(tags=["memory"])

    @router.post("/v1/memory", status_code=status.HTTP_201_CREATED,
                 response_model=memory.Remembered, responses={
                     **responses(404, 409, 429),
                     200: {"model": memory.Remembered,
                           "description": "Remembered already: the same item, same id"}})
    def remember(body: memory.MemoryWrite, principal: Writer,
                 response: Response) -> memory.Remembered:
        """Remember a fact (201), or find it remembered already (200, same id). With
        ``supersedes``, the older item gets a validity end and stays readable by id."""
        done = memory.remember(body, tenant_id=principal.tenant_id,
                               source=f"api:{principal.key_id}" if principal.key_id else "api")
        if not done.created:
            response.status_code = status.HTTP_200_OK
        return done

    @router.get("/v1/memory", response_model=memory.Recall | list[memory.MemoryItem],
                responses=responses())
    def search(
        principal: Reader,
        namespace: Annotated[str | None, Query(pattern=memory.NAMESPACE_PATTERN)] = None,
        q: Annotated[str | None, Query(min_length=1, max_length=memory.MAX_QUERY_CHARS)] = None,
        limit: Annotated[int, Query(ge=1, le=memory.MAX_RECALL_LIMIT)] = 5,
    ) -> memory.Recall | list[memory.MemoryItem]:
        """Recall the facts best matching ``q`` (all namespaces unless ``namespace``);
        without ``q``, the newest live items of ``namespace`` (``default`` unless given)."""
        if q is None:
            return memory.newest(tenant_id=principal.tenant_id,
                                 namespace=namespace or memory.DEFAULT_NAMESPACE, limit=limit)
        return memory.recall(tenant_id=principal.tenant_id, query=q, namespace=namespace,
                             limit=limit)

    @router.get("/v1/memory/{item_id}", response_model=memory.MemoryItem,
                responses=responses(404))
    def read(item_id: uuid.UUID, principal: Reader) -> memory.MemoryItem:
        """One item of the tenant's (current or superseded; 404 once expired)."""
        return memory.get_item(item_id, tenant_id=principal.tenant_id)

    @router.delete("/v1/memory/{item_id}", status_code=status.HTTP_204_NO_CONTENT,
                   responses=responses(404))
    def forget(item_id: uuid.UUID, principal: Writer) -> Response:
        """Delete an item for good: it is gone, not hidden."""
        memory.forget(item_id, tenant_id=principal.tenant_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
