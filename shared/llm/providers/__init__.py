"""LLM providers by name: ``sim`` (always available, no key), ``openai``,
``anthropic`` and ``openai-compatible`` (one module per vendor).

Vendor modules are imported on first use, so processes that never call a vendor never
import its SDK, and no client exists before a call needs one.
"""

from __future__ import annotations

from shared.errors import ConfigurationError
from shared.llm.base import LLMProvider
from shared.settings import get_settings

KNOWN_PROVIDERS = ("sim", "openai", "anthropic", "openai-compatible")


def get_provider(name: str | None = None) -> LLMProvider:
    """Return the provider called ``name`` (the settings' default when None).

    Building a provider needs no key; a missing key or base URL is reported by its
    first call (:class:`~shared.errors.ConfigurationError`).

    Raises:
        ConfigurationError: No provider has that name.
    """
    name = name or get_settings().default_provider
    if name == "sim":
        from shared.llm.providers.sim.provider import SimProvider

        return SimProvider()
    if name == "openai":
        from shared.llm.providers.openai import OpenAIProvider

        return OpenAIProvider()
    if name == "anthropic":
        from shared.llm.providers.anthropic import AnthropicProvider

        return AnthropicProvider()
    if name == "openai-compatible":
        from shared.llm.providers.openai_compatible import OpenAICompatibleProvider

        return OpenAICompatibleProvider()
    raise ConfigurationError(
        f"unknown LLM provider {name!r} (available: {', '.join(KNOWN_PROVIDERS)})"
    )
