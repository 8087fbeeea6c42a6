"""``taskforce bench NAME``: benchmarks, each measured side by side in one run and
recorded in ``docs/benchmarks.md``. One module per benchmark; :data:`BENCHMARKS` names
them for the command line."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from rich.console import Console

from shared.errors import ConfigurationError
from taskforce_cli.bench.dispatch import dispatch
from taskforce_cli.bench.gateway import gateway
from taskforce_cli.bench.inflight import inflight
from taskforce_cli.bench.memory import memory_bench
from taskforce_cli.bench.overhead import overhead
from taskforce_cli.bench.paper import paper
from taskforce_cli.bench.prompt_tokens import prompt_tokens
from taskforce_cli.bench.ratelimit import rate_limit
from taskforce_cli.bench.scale import scale
from taskforce_cli.bench.tracing import tracing_overhead

BENCHMARKS = {"gateway": gateway, "overhead": overhead, "prompt-tokens": prompt_tokens,
              "rate-limit": rate_limit, "dispatch": dispatch, "inflight": inflight,
              "scale": scale, "paper": paper, "overhead-tracing": tracing_overhead,
              "memory": memory_bench}
# Options only some benchmarks take (``--provider``, ``--model``, ``--limit``).
OPTIONS = {"paper": frozenset({"provider", "model", "limit"})}


def run(name: str, *, quick: bool = False, progress: Console | None = None,
        plot_dir: Path | None = None, **options: Any) -> dict[str, Any]:
    """Run the benchmark ``name`` and return its figures; those that plot write their
    PNGs into ``plot_dir`` (their default when None). ``options`` that are None are
    left out, the others go to benchmarks that take them (:data:`OPTIONS`).

    Raises:
        ConfigurationError: No benchmark has that name, or it takes no such option.
    """
    try:
        benchmark = BENCHMARKS[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown benchmark {name!r} (available: {', '.join(sorted(BENCHMARKS))})"
        ) from None
    given = {key: value for key, value in options.items() if value is not None}
    unknown = set(given) - OPTIONS.get(name, frozenset())
    if unknown:
        raise ConfigurationError(f"bench {name} takes no option "
                                 f"{', '.join('--' + k for k in sorted(unknown))}")
    if "plot_dir" in inspect.signature(benchmark).parameters:
        given["plot_dir"] = plot_dir
    return benchmark(quick=quick, progress=progress, **given)
