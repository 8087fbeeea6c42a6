"""The result object of a goal, as ``taskforce run --json`` prints it and ``taskforce
batch`` and ``GET /v1/batches/{id}/results`` write it (one JSON object per line)."""

from __future__ import annotations

from typing import Any

from shared.domain.models import Goal


def result_object(view: Goal) -> dict[str, Any]:
    """The final goal object: ``id``, ``status``, ``mode``, ``provider``, ``model``, ``simulated``
    (True when no real model answered), ``answer``, ``error``, ``tokens``, ``cost_usd``
    (USD), ``session_id``, ``reused_plan_from`` (the goal whose plan was reused, if
    any) and ``steps`` (each with ``id``, ``kind``, ``tool``, ``status``,
    ``started_at``, ``finished_at`` as ISO 8601 UTC)."""
    return {
        "id": str(view.id),
        "status": view.status.value,
        "mode": view.mode.value,
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


def batch_result(view: Goal, input_id: str) -> dict[str, Any]:
    """One line of a batch's results: the input's ``id``, the goal's ``goal_id``, the
    fields of :func:`result_object` and ``latency_s`` (seconds from submission to the
    end; None while the goal runs)."""
    result = result_object(view)
    result["goal_id"] = result.pop("id")
    latency = ((view.finished_at - view.created_at).total_seconds()
               if view.finished_at else None)
    return {"id": input_id, **result, "latency_s": latency}


def not_submitted(input_id: str, error: str) -> dict[str, Any]:
    """The line of a batch item that never became a goal, and why."""
    return {"id": input_id, "goal_id": None, "status": "not_submitted", "mode": None, "provider": None,
            "model": None, "simulated": None, "answer": None, "error": error, "tokens": 0,
            "cost_usd": 0.0, "session_id": None, "reused_plan_from": None, "steps": [],
            "latency_s": None}
