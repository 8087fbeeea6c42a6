"""The ``openai`` provider: OpenAI's Chat Completions API through the official SDK.

Wire format: one system message and one user message, the two texts of
:func:`shared.llm.base.render` (the role's prompt; the data section and the
instruction); structured output through
``response_format={"type": "json_schema", ...}``. The schema is sent in strict mode
when it can be made strict-compatible (every object closed, every property required,
only supported keywords), else non-strict: the planner's schema has free-form ``args``
objects, which strict mode rejects.

Usage: ``prompt_tokens`` → input tokens, ``completion_tokens`` → output tokens,
``prompt_tokens_details.cached_tokens`` → cached tokens (part of the input tokens).

Settings: ``OPENAI_API_KEY`` (required), ``OPENAI_BASE_URL`` (default
``https://api.openai.com/v1``), ``LLM_TIMEOUT_S``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import openai as sdk

from shared.errors import LLMError
from shared.llm.base import LLMRequest, Usage, render
from shared.llm.providers.common import (
    Answer,
    VendorProvider,
    cached_client,
    parse_answer,
    read_key,
    sdk_error,
)
from shared.llm.wire import SIM_FINGERPRINT
from shared.settings import Settings

DEFAULT_BASE_URL = "https://api.openai.com/v1"

# Keywords structured outputs accept in strict mode (OpenAI's "Supported schemas" guide);
# "default" is dropped when converting, anything else makes the schema non-strict.
_STRICT_KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "anyOf", "$ref",
    "$defs", "enum", "const", "description", "title", "pattern", "format", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems",
    "maxItems", "default",
})
_SCHEMA_NAME = re.compile(r"[^A-Za-z0-9_-]")


def _strict(node: Any) -> bool:
    """Make ``node`` (a copy) strict in place; False if it cannot be made strict."""
    if isinstance(node, list):
        return all(_strict(item) for item in node)
    if not isinstance(node, dict):
        return True
    if not set(node) <= _STRICT_KEYWORDS:
        return False
    node.pop("default", None)
    if node.get("type") == "object" or "properties" in node:
        properties = node.get("properties")
        if not properties or node.get("additionalProperties", False) is not False:
            return False
        node["additionalProperties"] = False
        node["required"] = list(properties)
        if not all(_strict(p) for p in properties.values()):
            return False
    for key in ("items", "anyOf"):
        if key in node and not _strict(node[key]):
            return False
    return all(_strict(d) for d in node.get("$defs", {}).values())


def response_format(schema: dict[str, Any], *, name: str) -> dict[str, Any]:
    """The ``response_format`` for ``schema``: strict if it can be made so, else not."""
    safe_name = _SCHEMA_NAME.sub("_", name)[:64] or "answer"
    strict_schema = copy.deepcopy(schema)
    if _strict(strict_schema):
        return {"type": "json_schema",
                "json_schema": {"name": safe_name, "schema": strict_schema, "strict": True}}
    return {"type": "json_schema",
            "json_schema": {"name": safe_name, "schema": schema, "strict": False}}


def schema_format(request: LLMRequest) -> dict[str, Any]:
    """The JSON-schema ``response_format`` of ``request``, named after its schema."""
    name = str(request.output_schema.get("title") or request.purpose)
    return response_format(request.output_schema, name=name)


def read_completion(response: Any, *, vendor: str) -> Answer:
    """Turn a Chat Completions response into an :class:`Answer`.

    Raises:
        LLMError: The model refused, or the content filter stopped it.
        MalformedOutputError: No choice, a cut-off answer, or an answer that is not a
            JSON object.
    """
    usage = Usage(input_tokens=0, output_tokens=0)
    if response.usage is not None:
        details = getattr(response.usage, "prompt_tokens_details", None)
        usage = Usage(
            input_tokens=response.usage.prompt_tokens or 0,
            output_tokens=response.usage.completion_tokens or 0,
            cached_tokens=(getattr(details, "cached_tokens", None) or 0) if details else 0,
        )
    simulated = getattr(response, "system_fingerprint", None) == SIM_FINGERPRINT
    if not response.choices:
        return Answer(parse_answer(None, vendor=vendor, usage=usage, simulated=simulated),
                      usage, simulated)
    choice = response.choices[0]
    if getattr(choice.message, "refusal", None):
        raise LLMError(f"{vendor}: the model refused to answer")
    if choice.finish_reason == "content_filter":
        raise LLMError(f"{vendor}: the answer was stopped by the content filter")
    data = parse_answer(choice.message.content, vendor=vendor, usage=usage,
                        truncated=choice.finish_reason == "length", simulated=simulated)
    return Answer(data, usage, simulated)


def chat_messages(request: LLMRequest) -> list[dict[str, str]]:
    """The ``messages`` of ``request``: its rendered system prompt and user message."""
    system, user = render(request)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


class OpenAIProvider(VendorProvider):
    """OpenAI Chat Completions with JSON-schema structured output."""

    name = "openai"
    default_model = "gpt-4.1-mini"
    # OpenAI's name for the output cap; OpenAI-compatible servers take ``max_tokens``.
    output_cap_param = "max_completion_tokens"

    def _connection(self, settings: Settings) -> tuple[str, str]:
        """(base URL, key) from the settings."""
        key = read_key(settings.openai_api_key, "OPENAI_API_KEY")
        return settings.openai_base_url or DEFAULT_BASE_URL, key or ""

    def client(self, settings: Settings) -> sdk.OpenAI:
        """This process's SDK client for the configured base URL and key."""
        base_url, key = self._connection(settings)
        return cached_client(self.name, base_url, key, lambda: sdk.OpenAI(
            api_key=key, base_url=base_url, max_retries=0, timeout=settings.llm_timeout_s))

    def _create(self, client: sdk.OpenAI, request: LLMRequest,
                fmt: dict[str, Any], settings: Settings) -> Any:
        return client.chat.completions.create(
            model=request.model,
            messages=chat_messages(request),
            response_format=fmt,
            timeout=settings.llm_timeout_s,
            **{self.output_cap_param: request.max_output_tokens},
        )

    def _attempt(self, request: LLMRequest, settings: Settings) -> Answer:
        client = self.client(settings)
        fmt = schema_format(request)
        try:
            response = self._create(client, request, fmt, settings)
        except sdk.OpenAIError as exc:
            raise sdk_error(exc, sdk, vendor=self.name, timeout_s=settings.llm_timeout_s) from None
        return read_completion(response, vendor=self.name)
