"""Embeddings for long-term memory: the providers' own APIs, or the deterministic ``sim``.

* ``openai`` and ``openai-compatible``: ``client.embeddings.create`` of the OpenAI SDK
  (``POST /v1/embeddings``), with the keys, base URLs and timeouts of the LLM providers
  of the same name, the SDK's retries off and :mod:`shared.llm.retry` as the one retry
  layer. OpenAI's ``text-embedding-3-*`` models take ``dimensions`` and shorten their
  vectors to ``MEMORY_EMBEDDING_DIM``; a server that ignores it and answers another
  length is refused (:class:`~shared.errors.LLMError`), never stored.
* ``anthropic``: Anthropic has no embeddings endpoint (its documentation points to
  third-party providers), so there is nothing to call: :func:`embedder` returns None and
  recall is full-text only.
* ``sim``: feature hashing of words and word pairs into ``dim`` signed buckets,
  L2-normalised: deterministic, no network, texts sharing words lie close together. Its
  vectors are marked simulated wherever they are reported.

Responses of the wire simulator (``taskforce sim-llm``) are marked too: they carry
``"simulated": true`` (an extra field the SDK keeps).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

from shared.errors import ConfigurationError, LLMError
from shared.llm.providers.common import cached_client, read_key, sdk_error
from shared.llm.retry import call_with_retries
from shared.settings import Settings

log = logging.getLogger(__name__)

SIM_MODEL = "sim-embed-1"
MAX_BATCH = 256  # texts per request (OpenAI accepts up to 2,048 inputs)
_WORD = re.compile(r"[a-z0-9]+")
_NO_ENDPOINT_LOGGED: set[str] = set()


@dataclass(frozen=True)
class Embeddings:
    """Vectors for a list of texts.

    Attributes:
        vectors: One list of ``dim`` floats per text, in order.
        model: The model that made them.
        simulated: True for the ``sim`` model and the wire simulator.
    """

    vectors: list[list[float]]
    model: str
    simulated: bool


class Embedder(Protocol):
    """Turns texts into vectors of a fixed dimension."""

    model: str

    def embed(self, texts: list[str]) -> Embeddings:
        """Vectors for ``texts`` (raises LLMError or RetryableLLMError on failure)."""


def _words(text: str) -> list[str]:
    return [w[:-1] if len(w) > 3 and w.endswith("s") else w
            for w in _WORD.findall(text.lower())]


def sim_vector(text: str, dim: int) -> list[float]:
    """The ``sim`` model's vector of ``text``: words and adjacent word pairs hashed
    (SHA-256) into ``dim`` buckets with a sign, then L2-normalised (zeros for no words).
    Deterministic across processes and machines."""
    vector = [0.0] * dim
    words = _words(text)
    features = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    for feature in features:
        digest = hashlib.sha256(feature.encode()).digest()
        index = int.from_bytes(digest[:4], "big") % dim
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [round(v / norm, 6) for v in vector] if norm else vector


class SimEmbedder:
    """The deterministic ``sim`` embeddings (marked simulated)."""

    def __init__(self, dim: int, model: str = SIM_MODEL) -> None:
        self.dim = dim
        self.model = model

    def embed(self, texts: list[str]) -> Embeddings:
        """Vectors for ``texts``; never fails."""
        return Embeddings([sim_vector(t, self.dim) for t in texts], self.model, True)


class OpenAIEmbedder:
    """``/v1/embeddings`` of OpenAI or an OpenAI-compatible server, through the SDK."""

    def __init__(self, settings: Settings, *, vendor: str) -> None:
        self.vendor = vendor
        self.model = settings.memory_embedding_model
        if self.model == SIM_MODEL:  # the default names the sim model: use the vendor's
            self.model = ("text-embedding-3-small" if vendor == "openai"
                          else settings.openai_compatible_model)
        self.dim = settings.memory_embedding_dim
        self.timeout_s = settings.llm_timeout_s
        if vendor == "openai":
            key = read_key(settings.openai_api_key, "OPENAI_API_KEY") or ""
            base_url = settings.openai_base_url or "https://api.openai.com/v1"
        else:
            if not settings.openai_compatible_base_url:
                raise ConfigurationError("OPENAI_COMPATIBLE_BASE_URL is not set (needed for "
                                         "openai-compatible embeddings)")
            key = read_key(settings.openai_compatible_api_key, "OPENAI_COMPATIBLE_API_KEY",
                           required=False) or "none"
            base_url = settings.openai_compatible_base_url
        import openai as sdk  # here, not at import: the sim model and the simulator skip it

        self.sdk: Any = sdk
        self.client = cached_client(f"{vendor}-embeddings", base_url, key, lambda: sdk.OpenAI(
            api_key=key, base_url=base_url, max_retries=0, timeout=self.timeout_s))

    def _attempt(self, texts: list[str]) -> Embeddings:
        extra = {"dimensions": self.dim} if self.model.startswith("text-embedding-3") or (
            self.vendor == "openai-compatible") else {}
        try:
            response = self.client.embeddings.create(model=self.model, input=texts,
                                                     encoding_format="float", **extra)
        except self.sdk.OpenAIError as exc:
            raise sdk_error(exc, self.sdk, vendor=self.vendor,
                            timeout_s=self.timeout_s) from None
        data = sorted(response.data, key=lambda d: d.index)
        vectors = [list(map(float, d.embedding)) for d in data]
        if len(vectors) != len(texts) or any(len(v) != self.dim for v in vectors):
            raise LLMError(f"{self.vendor}: embeddings of the wrong shape (expected "
                           f"{len(texts)} x {self.dim})")
        simulated = bool((response.model_extra or {}).get("simulated"))
        return Embeddings(vectors, response.model or self.model, simulated)

    def embed(self, texts: list[str]) -> Embeddings:
        """Vectors for ``texts``, in batches of :data:`MAX_BATCH`.

        Raises:
            LLMRetriesExhaustedError: Transient failures outlasted the retry budget.
            LLMError: A final failure, or vectors of another dimension.
        """
        vectors: list[list[float]] = []
        model, simulated = self.model, False
        for start in range(0, len(texts), MAX_BATCH):
            part = call_with_retries(lambda: self._attempt(texts[start:start + MAX_BATCH]),
                                     vendor=self.vendor)
            vectors += part.vectors
            model, simulated = part.model, simulated or part.simulated
        return Embeddings(vectors, model, simulated)


def embedder(settings: Settings) -> Embedder | None:
    """The embedder ``settings`` configure, or None when recall is full-text only
    (``none``, or ``anthropic``, which has no embeddings endpoint; said once in the log).

    Raises:
        ConfigurationError: A key or base URL the provider needs is not set.
    """
    provider = settings.memory_embedding_provider
    if provider == "sim":
        return SimEmbedder(settings.memory_embedding_dim, settings.memory_embedding_model)
    if provider in ("openai", "openai-compatible"):
        return OpenAIEmbedder(settings, vendor=provider)
    if provider == "anthropic" and provider not in _NO_ENDPOINT_LOGGED:
        _NO_ENDPOINT_LOGGED.add(provider)
        log.warning("Anthropic offers no embeddings endpoint: memory recall is full-text "
                    "only (set MEMORY_EMBEDDING_PROVIDER=openai or openai-compatible for "
                    "hybrid recall)")
    return None
