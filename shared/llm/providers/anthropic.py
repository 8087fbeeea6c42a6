"""The ``anthropic`` provider: Anthropic's Messages API through the official SDK.

Wire format: the two texts of :func:`shared.llm.base.render`, the role's prompt as
``system`` and one user message (the data section and the instruction); structured output
through tool use: one tool, ``submit_<purpose>``, whose ``input_schema`` is the
request's output schema, forced with ``tool_choice={"type": "tool", "name": ...}``. The
answer is that tool_use block's ``input``. A reply without it falls back to parsing the
text blocks as JSON.

Usage: Anthropic's ``input_tokens`` exclude cache reads and writes, so input tokens
here are ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens`` and
cached tokens are ``cache_read_input_tokens`` (cache writes are priced as plain input:
Taskforce sets no ``cache_control``, so there are none).

Settings: ``ANTHROPIC_API_KEY`` (required), ``ANTHROPIC_BASE_URL`` (default
``https://api.anthropic.com``), ``LLM_TIMEOUT_S``.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic as sdk

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
from shared.llm.wire import SIM_MESSAGE_ID_PREFIX
from shared.settings import Settings

DEFAULT_BASE_URL = "https://api.anthropic.com"


def tool_name(request: LLMRequest) -> str:
    """Name of the one tool the model must call: ``submit_<purpose>``."""
    return f"submit_{request.purpose}"


def read_message(message: Any, *, vendor: str, tool: str) -> Answer:
    """Turn a Messages API response into an :class:`Answer`.

    Raises:
        LLMError: The model refused.
        MalformedOutputError: The answer was cut off at ``max_tokens``, or neither a
            tool_use block nor text holding a JSON object came back.
    """
    u = message.usage
    read = getattr(u, "cache_read_input_tokens", None) or 0
    written = getattr(u, "cache_creation_input_tokens", None) or 0
    usage = Usage(input_tokens=(u.input_tokens or 0) + read + written,
                  output_tokens=u.output_tokens or 0, cached_tokens=read)
    if message.stop_reason == "refusal":
        raise LLMError(f"{vendor}: the model refused to answer")
    blocks = list(message.content or [])
    call = next((b for b in blocks if b.type == "tool_use" and b.name == tool), None)
    text = "".join(b.text for b in blocks if b.type == "text")
    truncated = message.stop_reason == "max_tokens"
    simulated = str(message.id).startswith(SIM_MESSAGE_ID_PREFIX)
    if call is not None and isinstance(call.input, dict) and not truncated:
        data = call.input
    else:
        raw = json.dumps(call.input) if call is not None else text
        data = parse_answer(raw, vendor=vendor, usage=usage, truncated=truncated,
                            simulated=simulated)
    return Answer(data, usage, simulated)


class AnthropicProvider(VendorProvider):
    """Anthropic Messages with structured output through one forced tool."""

    name = "anthropic"
    default_model = "claude-haiku-4-5"

    def client(self, settings: Settings) -> sdk.Anthropic:
        """This process's SDK client for the configured base URL and key."""
        key = read_key(settings.anthropic_api_key, "ANTHROPIC_API_KEY") or ""
        base_url = settings.anthropic_base_url or DEFAULT_BASE_URL
        return cached_client(self.name, base_url, key, lambda: sdk.Anthropic(
            api_key=key, base_url=base_url, max_retries=0, timeout=settings.llm_timeout_s))

    def _attempt(self, request: LLMRequest, settings: Settings) -> Answer:
        client = self.client(settings)
        tool = tool_name(request)
        system, user = render(request)
        try:
            message = client.messages.create(
                model=request.model,
                max_tokens=request.max_output_tokens,
                system=system,
                messages=[{"role": "user", "content": user}],
                tools=[{"name": tool,
                        "description": f"Submit the {request.purpose} result; its input is "
                                       "the answer.",
                        "input_schema": request.output_schema}],
                tool_choice={"type": "tool", "name": tool},
                timeout=settings.llm_timeout_s,
            )
        except sdk.AnthropicError as exc:
            raise sdk_error(exc, sdk, vendor=self.name, timeout_s=settings.llm_timeout_s) from None
        return read_message(message, vendor=self.name, tool=tool)
