"""Result objects printed by ``taskforce run --json`` and written by ``taskforce batch``."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from shared.domain.models import Goal


def result_object(view: Goal) -> dict[str, Any]:
    """The final goal object: ``id``, ``status``, ``provider``, ``model``, ``simulated``
    (True when no real model answered), ``answer``, ``error``, ``tokens``, ``cost_usd``
    (USD) and ``steps`` (each with ``id``, ``kind``, ``tool``, ``status``,
    ``started_at``, ``finished_at`` as ISO 8601 UTC)."""
    return {
        "id": str(view.id),
        "status": view.status.value,
        "provider": view.provider,
        "model": view.model,
        "simulated": view.simulated,
        "answer": view.answer,
        "error": view.error,
        "tokens": view.tokens,
        "cost_usd": view.cost_usd,
        "session_id": view.session_id,
        "reused_plan_from": str(view.reused_plan_from) if view.reused_plan_from else None,
        "steps": [
            {
                "id": step.id,
                "kind": step.kind.value,
                "tool": step.tool,
                "status": step.status.value,
                "started_at": step.started_at.isoformat() if step.started_at else None,
                "finished_at": step.finished_at.isoformat() if step.finished_at else None,
            }
            for step in view.steps
        ],
    }


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
