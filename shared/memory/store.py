"""Long-term memory: remember, recall, read and forget facts per tenant and namespace.

What the gateway (``/v1/memory``), the ``remember`` and ``recall`` tools and the CLI
call. Writes are add-only: a fact is stored once per (tenant, namespace) by the SHA-256
of its content (a repeat returns the same id); a newer fact may supersede an older one,
which is kept with a validity end (``valid_to``), never overwritten. Any item may carry
a TTL; cleanup deletes it once expired, and reads skip it from that moment.

Recall is hybrid when the database has pgvector and an embedder is configured
(full-text and vector candidates fused by reciprocal rank,
:mod:`shared.persistence.memory_search`); otherwise full-text, said once in the log.
Each tenant's items count against ``MEMORY_MAX_ITEMS_PER_TENANT`` (or the tenant's own
``memory_max_items``) and each namespace's against ``MEMORY_NAMESPACE_MAX_ITEMS``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection, Engine

from shared.errors import (
    LLMError,
    MemoryConflictError,
    MemoryNotFoundError,
    QuotaExceededError,
    RequestError,
)
from shared.llm.embeddings import Embedder, embedder
from shared.persistence import memory as store
from shared.persistence import memory_search
from shared.persistence.db import get_engine
from shared.settings import get_settings

log = logging.getLogger(__name__)

NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9_.:-]{0,63}$"
"""Namespaces: 1 to 64 characters, lower-case letters, digits and ``_ . : -``."""
DEFAULT_NAMESPACE = "default"
MAX_QUERY_CHARS = 500
MAX_RECALL_LIMIT = 20
_NAMESPACE = re.compile(NAMESPACE_PATTERN)
_NORMALISE = re.compile(r"[^\w]+")


class MemoryWrite(BaseModel):
    """A fact to remember (body of ``POST /v1/memory``).

    Attributes:
        namespace: Where it belongs (``NAMESPACE_PATTERN``), e.g. ``user:42`` or ``default``.
        content: The fact (1 to ``MEMORY_MAX_CONTENT_CHARS`` characters, 4,000 by default).
        ttl_s: Seconds until it expires, at least 1 (a shorter life would end before the
            write returns) and up to ``MEMORY_MAX_TTL_S``; None: the default TTL
            (``MEMORY_DEFAULT_TTL_S``, none unless set).
        supersedes: Id of a live item of the same tenant this fact replaces.
    """

    model_config = ConfigDict(extra="forbid")

    namespace: str = Field(default=DEFAULT_NAMESPACE, pattern=NAMESPACE_PATTERN)
    content: str = Field(min_length=1, max_length=100_000)
    ttl_s: float | None = Field(default=None, ge=1, le=100 * 365 * 86_400.0)
    supersedes: uuid.UUID | None = None


class MemoryItem(BaseModel):
    """A stored fact as shown to clients.

    Attributes:
        valid_to: When a newer fact superseded it (None while it is current).
        superseded_by: The id of that newer fact.
        expires_at: When its TTL ends (None: no TTL).
        embedding_model: The model of its embedding (None: none stored).
        embedding_simulated: True when that embedding came from a simulated model.
    """

    id: uuid.UUID
    namespace: str
    content: str
    source: str
    created_at: datetime
    valid_to: datetime | None = None
    superseded_by: uuid.UUID | None = None
    expires_at: datetime | None = None
    embedding_model: str | None = None
    embedding_simulated: bool = False


class Remembered(BaseModel):
    """Outcome of a write: the live item, whether it is new (False: the same content was
    already live, a de-duplicated repeat), and the id it superseded, if any."""

    item: MemoryItem
    created: bool
    superseded: uuid.UUID | None = None


class RecallHit(MemoryItem):
    """A recalled item with its fused score (sum of 1 / (k + rank)) and the rank each
    retriever gave it (None where it missed)."""

    score: float
    full_text_rank: int | None = None
    vector_rank: int | None = None


class Recall(BaseModel):
    """Answer of a recall: ``mode`` is ``hybrid`` (full-text and vector, fused) or
    ``full_text`` (no pgvector, no embedder, or the embedder failed: ``note`` says
    which); ``simulated_embeddings`` is True when the query's vector was simulated."""

    query: str
    namespace: str | None
    mode: Literal["hybrid", "full_text"]
    simulated_embeddings: bool = False
    note: str | None = None
    hits: list[RecallHit]


def content_hashes(content: str) -> tuple[str, str]:
    """SHA-256 of the exact content, and of its normalised form (lower case, runs of
    non-word characters as one space, trimmed): the keys of exact de-duplication and of
    near-duplicates (``"Paris is the capital."`` and ``"paris is the capital"``)."""
    normal = _NORMALISE.sub(" ", content.lower()).strip()
    return (hashlib.sha256(content.encode()).hexdigest(),
            hashlib.sha256(normal.encode()).hexdigest())


# --- vector availability, read from the database once per process and engine ---------

_vector_dims: dict[str, int | None] = {}
_vector_lock = threading.Lock()


def vector_dimension(engine: Engine) -> int | None:
    """The embedding dimension this database stores, or None when recall must be
    full-text only (no pgvector, or a column of another dimension than
    ``MEMORY_EMBEDDING_DIM``). Read once per process and database; the fallback is
    logged once."""
    key = engine.url.render_as_string(hide_password=True)
    with _vector_lock:
        if key in _vector_dims:
            return _vector_dims[key]
        with engine.connect() as connection:
            dim = memory_search.vector_dimension(connection)
        wanted = get_settings().memory_embedding_dim
        if dim is None:
            log.warning("this PostgreSQL has no pgvector (no vector extension or no "
                        "memory_embeddings table): memory recall is full-text only")
        elif dim != wanted:
            log.warning("memory_embeddings holds vectors of %d numbers but "
                        "MEMORY_EMBEDDING_DIM is %d: memory recall is full-text only", dim,
                        wanted)
            dim = None
        _vector_dims[key] = dim
        return dim


def forget_vector_support() -> None:
    """Read pgvector availability again on next use (after a migration or in tests)."""
    with _vector_lock:
        _vector_dims.clear()


def _embedder_for(engine: Engine) -> Embedder | None:
    if vector_dimension(engine) is None:
        return None
    return embedder(get_settings())


# --- the operations ----------------------------------------------------------------------


def _check_write(write: MemoryWrite) -> float | None:
    settings = get_settings()
    if not _NAMESPACE.match(write.namespace):
        raise RequestError(f"namespace must match {NAMESPACE_PATTERN}")
    if len(write.content) > settings.memory_max_content_chars:
        raise RequestError(f"content is {len(write.content)} characters, more than "
                           f"{settings.memory_max_content_chars} (MEMORY_MAX_CONTENT_CHARS)")
    if not write.content.strip():
        raise RequestError("content must not be blank")
    ttl_s = write.ttl_s if write.ttl_s is not None else settings.memory_default_ttl_s
    if ttl_s is not None and ttl_s > settings.memory_max_ttl_s:
        raise RequestError(f"ttl_s {ttl_s:g} is above {settings.memory_max_ttl_s:g} s "
                           "(MEMORY_MAX_TTL_S)")
    return ttl_s


def _check_quota(connection: Connection, *, tenant_id: uuid.UUID, namespace: str,
                 content_sha256: str) -> None:
    """Refuse a new item past the tenant's or the namespace's cap (a repeat of a live fact
    adds no row and always passes). Takes the tenant's memory lock until the commit."""
    settings = get_settings()
    store.lock_tenant(connection, tenant_id=tenant_id)
    if store.is_live(connection, tenant_id=tenant_id, namespace=namespace,
                     content_sha256=content_sha256):
        return
    total, in_namespace = store.usage(connection, tenant_id=tenant_id, namespace=namespace)
    cap = store.tenant_item_cap(connection, tenant_id=tenant_id)
    cap = settings.memory_max_items_per_tenant if cap is None else cap
    if total >= cap:
        raise QuotaExceededError(f"memory quota reached: the tenant holds {total} items, its "
                                 f"limit is {cap}; delete items or let them expire")
    if in_namespace >= settings.memory_namespace_max_items:
        raise QuotaExceededError(
            f"memory namespace {namespace!r} holds {in_namespace} items, its limit is "
            f"{settings.memory_namespace_max_items} (MEMORY_NAMESPACE_MAX_ITEMS)")


def remember(write: MemoryWrite, *, tenant_id: uuid.UUID, source: str) -> Remembered:
    """Store a fact for the tenant (or find it stored), superseding another if asked.

    The embedding is computed before the transaction (a network call, when a vendor
    makes it); a failed embedding stores the fact without one (logged), never loses it.
    Quota check, insert and supersede are one transaction under the tenant's memory
    lock.

    Args:
        source: Who wrote it: ``api``, ``cli`` or ``goal:<id>``.

    Raises:
        RequestError: Bad namespace, content or TTL (422).
        QuotaExceededError: The tenant's or the namespace's item cap is reached (429).
        MemoryNotFoundError: ``supersedes`` names no live item of the tenant (404).
        MemoryConflictError: ``supersedes`` names an item superseded already (409).
    """
    ttl_s = _check_write(write)
    engine = get_engine()
    vector, model, simulated = None, None, False
    maker = _embedder_for(engine)
    if maker is not None:
        try:
            result = maker.embed([write.content])
            vector, model, simulated = result.vectors[0], result.model, result.simulated
        except LLMError as exc:
            log.warning("memory embedding failed (%s): the fact is stored without one", exc)
    exact, normal = content_hashes(write.content)
    with engine.begin() as connection:
        _check_quota(connection, tenant_id=tenant_id, namespace=write.namespace,
                     content_sha256=exact)
        added = store.add_item(connection, tenant_id=tenant_id, namespace=write.namespace,
                               content=write.content, content_sha256=exact,
                               norm_sha256=normal, source=source, ttl_s=ttl_s,
                               embedding_model=model, embedding_simulated=simulated)
        if vector is not None and added.created:
            memory_search.add_embedding(connection, item_id=added.id, tenant_id=tenant_id,
                                        namespace=write.namespace, vector=vector)
        if write.supersedes is not None:
            outcome = store.supersede(connection, tenant_id=tenant_id,
                                      old_id=write.supersedes, new_id=added.id)
            if outcome == "missing":
                raise MemoryNotFoundError(f"no memory item {write.supersedes} to supersede")
            if outcome == "already":
                raise MemoryConflictError(f"memory item {write.supersedes} was superseded "
                                          "already; supersede its successor instead")
        row = store.get_item(connection, tenant_id=tenant_id, item_id=added.id)
    return Remembered(item=MemoryItem(**row), created=added.created,
                      superseded=write.supersedes)


def recall(*, tenant_id: uuid.UUID, query: str, namespace: str | None = DEFAULT_NAMESPACE,
           limit: int = 5) -> Recall:
    """The tenant's live facts best matching ``query``, best first.

    Raises:
        RequestError: A bad namespace, an empty or long query, a limit out of 1..20.
    """
    settings = get_settings()
    if namespace is not None and not _NAMESPACE.match(namespace):
        raise RequestError(f"namespace must match {NAMESPACE_PATTERN}")
    if not query.strip() or len(query) > MAX_QUERY_CHARS:
        raise RequestError(f"query must be 1 to {MAX_QUERY_CHARS} characters")
    if not 1 <= limit <= MAX_RECALL_LIMIT:
        raise RequestError(f"limit must be 1 to {MAX_RECALL_LIMIT}")
    engine = get_engine()
    vector, simulated, note = None, False, None
    if vector_dimension(engine) is None:
        note = "no pgvector in this database: full-text recall"
    else:
        maker = embedder(settings)
        if maker is None:
            note = f"no embeddings from {settings.memory_embedding_provider}: full-text recall"
        else:
            try:
                result = maker.embed([query])
                vector, simulated = result.vectors[0], result.simulated
            except LLMError as exc:
                note = f"embedding the query failed ({exc}): full-text recall"
                log.warning("memory recall: %s", note)
    with engine.begin() as connection:
        rows = memory_search.recall(
            connection, tenant_id=tenant_id, namespace=namespace, query=query,
            vector=vector, limit=limit, candidates=settings.memory_recall_candidates,
            k=settings.memory_rrf_k, max_distance=settings.memory_vector_max_distance)
    return Recall(query=query, namespace=namespace,
                  mode="hybrid" if vector is not None else "full_text",
                  simulated_embeddings=simulated, note=note,
                  hits=[RecallHit(**{**row, "score": float(row["score"])}) for row in rows])


def get_item(item_id: uuid.UUID, *, tenant_id: uuid.UUID) -> MemoryItem:
    """The tenant's item (current or superseded). Raises MemoryNotFoundError (404) for
    an unknown, expired or another tenant's item."""
    with get_engine().connect() as connection:
        row = store.get_item(connection, tenant_id=tenant_id, item_id=item_id)
    if row is None:
        raise MemoryNotFoundError(f"no memory item {item_id}")
    return MemoryItem(**row)


def newest(*, tenant_id: uuid.UUID, namespace: str, limit: int = 20) -> list[MemoryItem]:
    """The namespace's newest live items (at most ``limit``, 1 to 100)."""
    if not _NAMESPACE.match(namespace):
        raise RequestError(f"namespace must match {NAMESPACE_PATTERN}")
    if not 1 <= limit <= 100:
        raise RequestError("limit must be 1 to 100")
    with get_engine().connect() as connection:
        rows = store.newest_items(connection, tenant_id=tenant_id, namespace=namespace,
                                  limit=limit)
    return [MemoryItem(**row) for row in rows]


def forget(item_id: uuid.UUID, *, tenant_id: uuid.UUID) -> None:
    """Delete the tenant's item for good. Raises MemoryNotFoundError (404) as
    :func:`get_item` does."""
    with get_engine().begin() as connection:
        if not store.delete_item(connection, tenant_id=tenant_id, item_id=item_id):
            raise MemoryNotFoundError(f"no memory item {item_id}")
