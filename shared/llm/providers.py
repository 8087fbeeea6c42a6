"""Provider lookup by name. Real vendors plug in here; ``sim`` is always available."""

from __future__ import annotations

from shared.config import get_settings
from shared.errors import ConfigurationError
from shared.llm.base import LLMProvider

KNOWN_PROVIDERS = ("sim",)


def get_provider(name: str | None = None) -> LLMProvider:
    """Return the provider called ``name`` (the settings' default when None).

    Raises:
        ConfigurationError: No provider has that name.
    """
    name = name or get_settings().default_provider
    if name == "sim":
        from shared.llm.sim.provider import SimProvider

        return SimProvider()
    raise ConfigurationError(
        f"unknown LLM provider {name!r} (available: {', '.join(KNOWN_PROVIDERS)})"
    )
