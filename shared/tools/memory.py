"""``remember`` and ``recall``: the goal's tenant's long-term memory as tool calls.

Both run as ordinary DAG steps, so a plan can recall in parallel with its other lookups
(a recall step and search steps with no dependency between them start together) and
remember what a goal established. The tenant is the goal's own (``ToolContext.tenant_id``,
the ``default`` tenant for goals submitted without one): a goal never reads nor writes
another tenant's memory. What a step remembers carries ``source = goal:<goal id>``.

``remember`` is safe to run twice (a step delivered again, a retried attempt): the same
content in the same namespace is stored once (content-hash de-duplication).
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from shared.errors import QuotaExceededError, RequestError, ToolError
from shared.memory import store as memory
from shared.persistence.keys import DEFAULT_TENANT_ID
from shared.tools.base import Tool, ToolContext

SNIPPET_CHARS = 400


class RecallInput(BaseModel):
    """Arguments of ``recall``.

    Attributes:
        query: What to look for (1 to 500 characters).
        namespace: The namespace to search (``default`` unless given).
        limit: Most facts to return (1 to 20).
    """

    query: str = Field(min_length=1, max_length=memory.MAX_QUERY_CHARS)
    namespace: str = Field(default=memory.DEFAULT_NAMESPACE, pattern=memory.NAMESPACE_PATTERN)
    limit: int = Field(default=5, ge=1, le=memory.MAX_RECALL_LIMIT)


class RememberInput(BaseModel):
    """Arguments of ``remember``.

    Attributes:
        content: The fact (1 to 4,000 characters; ``MEMORY_MAX_CONTENT_CHARS``).
        namespace: Where it belongs (``default`` unless given).
        ttl_s: Seconds until it expires (none unless given).
    """

    content: str = Field(min_length=1, max_length=100_000)
    namespace: str = Field(default=memory.DEFAULT_NAMESPACE, pattern=memory.NAMESPACE_PATTERN)
    ttl_s: float | None = Field(default=None, gt=0)


def _tenant(ctx: ToolContext) -> uuid.UUID:
    return uuid.UUID(ctx.tenant_id) if ctx.tenant_id else DEFAULT_TENANT_ID


def _recall(args: RecallInput, ctx: ToolContext) -> dict[str, Any]:
    try:
        found = memory.recall(tenant_id=_tenant(ctx), query=args.query,
                              namespace=args.namespace, limit=args.limit)
    except RequestError as exc:
        raise ToolError(f"recall refused: {exc.detail()}") from None
    hits = [{"id": str(hit.id), "title": f"memory ({hit.namespace})",
             "snippet": hit.content[:SNIPPET_CHARS], "source": hit.source,
             "rank": round(hit.score, 6), "created_at": hit.created_at.isoformat()}
            for hit in found.hits]
    return {"query": args.query, "namespace": args.namespace, "mode": found.mode,
            "simulated_embeddings": found.simulated_embeddings, "note": found.note,
            "hits": hits, "value": None}


def _remember(args: RememberInput, ctx: ToolContext) -> dict[str, Any]:
    write = memory.MemoryWrite(namespace=args.namespace, content=args.content,
                               ttl_s=args.ttl_s)
    try:
        done = memory.remember(write, tenant_id=_tenant(ctx), source=f"goal:{ctx.goal_id}")
    except (QuotaExceededError, RequestError) as exc:
        raise ToolError(f"remember refused: {exc.detail()}") from None
    return {"id": str(done.item.id), "namespace": done.item.namespace,
            "created": done.created, "content": done.item.content[:SNIPPET_CHARS],
            "expires_at": done.item.expires_at.isoformat() if done.item.expires_at else None}


RECALL = Tool(
    name="recall",
    description=(
        "Search the tenant's long-term memory (facts remembered earlier). Input: "
        "{\"query\": str, \"namespace\": str, \"limit\": int}. Output: {\"hits\": "
        "[{\"id\", \"snippet\", \"rank\"}], \"mode\": \"hybrid\" | \"full_text\"}. Runs in "
        "parallel with other lookups."
    ),
    input_model=RecallInput,
    run=_recall,
)

REMEMBER = Tool(
    name="remember",
    description=(
        "Store a fact in the tenant's long-term memory for later goals. Input: "
        "{\"content\": str, \"namespace\": str, \"ttl_s\": number (optional)}. Output: "
        "{\"id\", \"created\": false when the same fact was stored already}."
    ),
    input_model=RememberInput,
    run=_remember,
)
