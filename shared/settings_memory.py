"""The settings of long-term memory: embeddings, input bounds, quotas and cleanup.

A base class of :class:`shared.settings.Settings` (read through
:func:`shared.settings.get_settings`, never on its own). Every field is an environment
variable of the same name in upper case.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

EMBEDDING_PROVIDERS = ("sim", "openai", "openai-compatible", "anthropic", "none")


class MemorySettings(BaseSettings):
    """Long-term memory (:mod:`shared.memory.store`).

    Attributes:
        memory_embedding_provider: Where memory embeddings come from: ``sim``
            (deterministic, marked simulated, no network), ``openai`` and
            ``openai-compatible`` (their ``/v1/embeddings`` through the OpenAI SDK, with the
            keys and base URLs of the LLM providers), ``anthropic`` (Anthropic has no
            embeddings endpoint: full-text recall only, said once in the log) or ``none``
            (full-text recall only).
        memory_embedding_model: Embedding model name (``text-embedding-3-small`` for
            OpenAI; ``sim-embed-1`` for the simulated one).
        memory_embedding_dim: Dimension of every stored embedding (numbers per vector).
            Fixed when the schema is migrated (the ``vector(N)`` column); OpenAI's
            ``text-embedding-3-*`` models shorten their vectors to it (``dimensions``).
            Changing it later needs a new column: until then recall is full-text only.
        memory_max_content_chars: Longest fact stored (characters).
        memory_max_ttl_s: Longest TTL an item may carry (seconds; 10 years).
        memory_default_ttl_s: TTL of items written without one (seconds); None: no TTL.
        memory_max_items_per_tenant: Items a tenant may hold, history included (a
            tenant's ``memory_max_items`` column overrides it); a write past it is a 429.
        memory_namespace_max_items: Items one namespace may hold; a write past it is a
            429, and cleanup trims superseded items of a namespace over it.
        memory_history_retention_days: How long a superseded item is kept (days) before
            cleanup purges it.
        memory_cleanup_batch_size: Rows one cleanup statement touches at most.
        memory_rrf_k: The ``k`` of reciprocal rank fusion, score = sum of 1 / (k + rank)
            (Cormack, Clarke & Büttcher, SIGIR 2009, use k = 60).
        memory_recall_candidates: Candidates each retriever (full-text, vector) hands to
            the fusion per recall.
        memory_vector_max_distance: Vector candidates farther from the query than this
            cosine distance (0: same direction, 1: unrelated, 2: opposite) are not
            recalled. 0.9 keeps what shares some meaning; raise it with embedding models
            whose unrelated texts lie closer.
    """

    memory_embedding_provider: str = Field(default="sim", pattern="^(" + "|".join(
        EMBEDDING_PROVIDERS) + ")$")
    memory_embedding_model: str = Field(default="sim-embed-1", min_length=1, max_length=200)
    memory_embedding_dim: int = Field(default=256, ge=8, le=2000)
    memory_max_content_chars: int = Field(default=4_000, ge=16, le=100_000)
    memory_max_ttl_s: float = Field(default=10 * 365 * 86_400.0, gt=0)
    memory_default_ttl_s: float | None = Field(default=None, gt=0)
    memory_max_items_per_tenant: int = Field(default=100_000, ge=1)
    memory_namespace_max_items: int = Field(default=50_000, ge=1)
    memory_history_retention_days: float = Field(default=30.0, gt=0)
    memory_cleanup_batch_size: int = Field(default=1_000, ge=1, le=100_000)
    memory_rrf_k: int = Field(default=60, ge=1)
    memory_recall_candidates: int = Field(default=50, ge=1, le=1_000)
    memory_vector_max_distance: float = Field(default=0.9, gt=0, le=2)
