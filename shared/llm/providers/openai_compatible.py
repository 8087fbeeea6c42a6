"""The ``openai-compatible`` provider: any server that speaks OpenAI's Chat Completions
(vLLM, Ollama, LM Studio, llama.cpp's server), through the official ``openai`` SDK.

Same wire format as :mod:`shared.llm.providers.openai`, with two differences for
self-hosted servers: ``max_tokens`` instead of ``max_completion_tokens`` (older servers
know only the former), and a fallback from ``response_format`` ``json_schema`` to
``{"type": "json_object"}`` when the server answers 400 to the former and accepts the
latter; the fallback is then remembered for that base URL for the life of the process.

Settings: ``OPENAI_COMPATIBLE_BASE_URL`` (required, e.g. ``http://127.0.0.1:11434/v1``
for Ollama, ``http://127.0.0.1:8000/v1`` for vLLM, ``http://127.0.0.1:1234/v1`` for LM
Studio), ``OPENAI_COMPATIBLE_API_KEY`` (optional: such servers often run without one;
a placeholder is sent then, as the SDK requires a key), ``OPENAI_COMPATIBLE_MODEL`` (the
default model name), ``LLM_TIMEOUT_S``. Tokens are priced at 0 by default
(see :mod:`shared.llm.pricing`).
"""

from __future__ import annotations

import threading

import openai as sdk

from shared.errors import ConfigurationError
from shared.llm.base import LLMRequest
from shared.llm.providers.common import Answer, read_key, sdk_error
from shared.llm.providers.openai import (
    OpenAIProvider,
    read_completion,
    schema_format,
)
from shared.settings import Settings, get_settings

NO_KEY_PLACEHOLDER = "not-needed"
JSON_OBJECT = {"type": "json_object"}

_JSON_OBJECT_ONLY: set[str] = set()
_LOCK = threading.Lock()


class OpenAICompatibleProvider(OpenAIProvider):
    """A self-hosted OpenAI-compatible server."""

    name = "openai-compatible"
    output_cap_param = "max_tokens"  # what vLLM, Ollama and LM Studio accept

    def __init__(self, settings: Settings | None = None) -> None:
        self.default_model = (settings or get_settings()).openai_compatible_model

    def _connection(self, settings: Settings) -> tuple[str, str]:
        if not settings.openai_compatible_base_url:
            raise ConfigurationError(
                "OPENAI_COMPATIBLE_BASE_URL is not set (needed by the openai-compatible "
                "provider)")
        key = read_key(settings.openai_compatible_api_key, "OPENAI_COMPATIBLE_API_KEY",
                       required=False)
        return settings.openai_compatible_base_url, key or NO_KEY_PLACEHOLDER

    def _attempt(self, request: LLMRequest, settings: Settings) -> Answer:
        base_url, _ = self._connection(settings)
        client = self.client(settings)
        fmt = None if base_url in _JSON_OBJECT_ONLY else schema_format(request)
        try:
            try:
                response = self._create(client, request, fmt or JSON_OBJECT, settings)
            except sdk.BadRequestError:
                if fmt is None:
                    raise
                response = self._create(client, request, JSON_OBJECT, settings)
                with _LOCK:
                    _JSON_OBJECT_ONLY.add(base_url)
        except sdk.OpenAIError as exc:
            raise sdk_error(exc, sdk, vendor=self.name, timeout_s=settings.llm_timeout_s) from None
        return read_completion(response, vendor=self.name)
