"""How the ``sim`` model replans after a step failed: keep what succeeded, answer from it.

Deterministic, like the rest of the simulated model: the new plan refers to every
completed tool step's output by id (so nothing that succeeded runs again) and ends in a
synthesis noting which steps failed. It reads only the replan context, never answers.
"""

from __future__ import annotations

from typing import Any


def replan(goal: str, context: dict[str, Any]) -> dict[str, Any]:
    """A plan that reuses ``context["completed"]`` and drops the failed steps.

    Args:
        goal: The goal text.
        context: ``{"completed": [{"id", "kind", "tool", ...}], "failed": [{"id",
            "error", ...}], "next_step_id": int}``.

    Returns:
        Plan JSON with one ``synthesize`` step numbered ``next_step_id``.
    """
    reused = [step["id"] for step in context["completed"] if step["kind"] == "tool"]
    failed = [step["id"] for step in context["failed"]]
    return {
        "steps": [{
            "id": context["next_step_id"],
            "kind": "synthesize",
            "args": {
                "instruction": goal,
                "inputs": [f"${step_id}" for step_id in reused],
                "task": "summary",
                "note": f"steps {failed} failed; answering from steps {reused}",
            },
            "description": "Answer from the steps that succeeded",
        }],
        "rationale": f"replan: reuse steps {reused}, drop failed steps {failed}",
    }
