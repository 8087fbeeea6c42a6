"""Result objects printed by ``taskforce run --json`` and written by ``taskforce batch``."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from shared.results import result_object as result_object  # shared with the gateway


def model_label(provider: str, model: str, simulated: bool) -> str:
    """``"sim/sim-planner-1 (simulated)"``: the model, marked when no real model answered."""
    return f"{provider}/{model}" + (" (simulated)" if simulated else "")


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` percentile (0..1) by the nearest-rank method; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarize(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch summary: counts by status, goals per model (``"provider/model"`` ->
    ``{"goals", "simulated"}``, the goals whose answers were simulated), latency p50 and
    p95 (seconds), tokens, cost (USD)."""
    latencies = [r["latency_s"] for r in results if r.get("latency_s") is not None]
    models: dict[str, dict[str, int]] = {}
    for r in results:
        if r.get("provider"):
            counts = models.setdefault(f"{r['provider']}/{r['model']}",
                                       {"goals": 0, "simulated": 0})
            counts["goals"] += 1
            counts["simulated"] += bool(r.get("simulated"))
    return {
        "goals": len(results),
        "by_status": dict(sorted(Counter(r["status"] for r in results).items())),
        "models": dict(sorted(models.items())),
        "latency_p50_s": percentile(latencies, 0.50),
        "latency_p95_s": percentile(latencies, 0.95),
        "tokens": sum(r.get("tokens") or 0 for r in results),
        "cost_usd": round(sum(r.get("cost_usd") or 0.0 for r in results), 8),
    }
