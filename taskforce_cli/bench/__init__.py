"""``taskforce bench NAME``: benchmarks, each measured side by side in one run and
recorded in ``docs/benchmarks.md``. One module per benchmark; :data:`BENCHMARKS` names
them for the command line."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from shared.errors import ConfigurationError
from taskforce_cli.bench.gateway import gateway
from taskforce_cli.bench.memory import memory_bench
from taskforce_cli.bench.overhead import overhead
from taskforce_cli.bench.prompt_tokens import prompt_tokens
from taskforce_cli.bench.ratelimit import rate_limit

BENCHMARKS = {"gateway": gateway, "overhead": overhead, "prompt-tokens": prompt_tokens,
              "rate-limit": rate_limit, "memory": memory_bench}


def run(name: str, *, quick: bool = False, progress: Console | None = None) -> dict[str, Any]:
    """Run the benchmark ``name`` and return its figures.

    Raises:
        ConfigurationError: No benchmark has that name.
    """
    try:
        benchmark = BENCHMARKS[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown benchmark {name!r} (available: {', '.join(sorted(BENCHMARKS))})"
        ) from None
    return benchmark(quick=quick, progress=progress)
