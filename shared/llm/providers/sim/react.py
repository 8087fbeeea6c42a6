"""The ``sim`` model's ReAct turns: one action per turn, then the answer.

A pure function of the turn's payload (the goal text and the actions taken so far with
their observations): no I/O, no clock, no randomness, and never a reference answer. It
reuses the plan heuristics (:func:`shared.llm.providers.sim.heuristics.plan_for_goal`):
the lookups and calculations a DAG plan would run, taken one per turn in the plan's
order, each with the earlier observations written into its arguments (so the action
needs no reference); once every one has its observation, the answer is written from
them as the DAG's synthesize step would.
"""

from __future__ import annotations

from typing import Any

from shared.domain.refs import resolve
from shared.errors import ReferenceError_
from shared.llm.providers.sim import answers, heuristics


def _failure_answer(item: dict[str, Any]) -> dict[str, Any]:
    return {"thought": f"step {item.get('step')} failed: I cannot go further.",
            "answer": f"Could not answer: {item.get('tool')} failed ({item.get('error')})."}


def next_turn(payload: dict[str, Any]) -> dict[str, Any]:
    """Choose the next action or the answer for a ReAct turn.

    Args:
        payload: The turn's data: ``{"goal": str, "history": [{"step": int, "tool": str,
            "args": dict, "observation": Any} or with "error": str, ...], ...}``.

    Returns:
        ``{"thought": str, "tool": str, "args": dict}`` for the next action, or
        ``{"thought": str, "answer": str}``. An action whose observation is an error,
        or an observation the next action cannot use, ends with an answer saying so.
    """
    goal = str(payload.get("goal") or "")
    history = [h for h in payload.get("history") or [] if isinstance(h, dict)]
    plan = heuristics.plan_for_goal(goal)
    actions = [s for s in plan["steps"] if s["kind"] == "tool"]
    final = next(s for s in plan["steps"] if s["kind"] == "synthesize")
    outputs: dict[int, Any] = {}
    for planned, item in zip(actions, history):
        if "error" in item or "observation" not in item:
            return _failure_answer(item)
        outputs[planned["id"]] = item["observation"]
    try:
        if len(history) < len(actions):
            planned = actions[len(history)]
            return {"thought": planned.get("description") or "Look it up.",
                    "tool": planned["tool"], "args": resolve(planned["args"], outputs)}
        args = resolve(final["args"], outputs)
    except ReferenceError_ as exc:
        return {"thought": "An observation lacks what the next step needs.",
                "answer": f"Could not answer: {exc}"}
    if args.get("instruction") == goal:  # as the synthesize role leaves it out
        args = {key: value for key, value in args.items() if key != "instruction"}
    thought = f"{len(history)} observations answer the goal." if history else \
        "The goal needs no tool."
    return {"thought": thought, "answer": answers.answer({"goal": goal, "args": args})}
