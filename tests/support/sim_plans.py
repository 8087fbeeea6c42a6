"""Goal sets and ``sim`` plans for the tests of the ``sim`` model and the sample corpus."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from shared.domain.models import Plan, Step, StepKind
from shared.domain.validation import validate_plan
from shared.llm.providers.sim.heuristics import plan_for_goal
from shared.tools.registry import ToolRegistry, build_registry

GOALS = Path(__file__).resolve().parents[2] / "examples" / "goals"


@cache
def goal_set(name: str) -> tuple[dict[str, Any], ...]:
    """The records of ``examples/goals/<name>.jsonl``, in file order."""
    lines = (GOALS / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


@cache
def registry() -> ToolRegistry:
    """The built-in tools."""
    return build_registry()


def validated_plan(goal: str) -> Plan:
    """The ``sim`` planner's plan for ``goal``, validated with the default caps."""
    return validate_plan(plan_for_goal(goal), registry=registry(), max_steps=32, max_fan_out=16)


def search_steps(plan: Plan) -> list[Step]:
    """The plan's ``search`` tool steps."""
    return [s for s in plan.steps if s.kind is StepKind.TOOL and s.tool == "search"]
