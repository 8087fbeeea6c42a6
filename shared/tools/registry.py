"""The set of tools a deployment offers, and how user tool modules join it."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator

from shared.errors import ConfigurationError, UnknownToolError
from shared.tools.base import Tool


class ToolRegistry:
    """Tools by name. Plans are validated against it and steps look their tool up in it."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        """Add ``tool``. Raises ConfigurationError if its name is taken."""
        if tool.name in self._tools:
            raise ConfigurationError(f"tool {tool.name!r} is registered twice")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool:
        """Return the tool called ``name``. Raises UnknownToolError if there is none."""
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(f"unknown tool {name!r}") from None

    def names(self) -> list[str]:
        """Names of every registered tool, sorted."""
        return sorted(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())


def build_registry(extra_modules: Iterable[str] = ()) -> ToolRegistry:
    """Return the built-in tools plus those of ``extra_modules``.

    Each extra module must define ``TOOLS``, a list of :class:`Tool` (see the README's
    "Adding a tool"). Settings name them in ``TOOL_MODULES``.

    Raises:
        ConfigurationError: A module cannot be imported or has no ``TOOLS``.
    """
    from shared.tools.calculator import CALCULATOR
    from shared.tools.echo import ECHO
    from shared.tools.memory import RECALL, REMEMBER
    from shared.tools.search import SEARCH

    registry = ToolRegistry([CALCULATOR, SEARCH, ECHO, RECALL, REMEMBER])
    for module_name in extra_modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigurationError(f"tool module {module_name!r} cannot be imported: {exc}")
        tools = getattr(module, "TOOLS", None)
        if tools is None:
            raise ConfigurationError(f"tool module {module_name!r} defines no TOOLS list")
        for tool in tools:
            registry.register(tool)
    return registry


def default_registry() -> ToolRegistry:
    """The registry for this process: built-ins plus the settings' ``tool_modules``."""
    from shared.settings import get_settings

    return build_registry(get_settings().tool_modules)
