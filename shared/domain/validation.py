"""Plan validation: every rule a plan must meet before anything is enqueued.

A plan that breaks a rule raises :class:`~shared.errors.PlanInvalidError`; the goal
then ends ``failed`` with a reason ``plan_invalid: <what is wrong>``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from graphlib import CycleError, TopologicalSorter
from typing import Any

from pydantic import ValidationError

from shared.domain.models import Plan, Step, StepKind
from shared.domain.refs import is_whole_reference
from shared.errors import PlanInvalidError
from shared.tools.registry import ToolRegistry


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "plan"
    return f"{where}: {error['msg']}"


def parse_plan(raw: Mapping[str, Any] | Plan) -> Plan:
    """Parse a plan from JSON-shaped data.

    Raises:
        PlanInvalidError: The data does not fit the :class:`Plan` schema.
    """
    if isinstance(raw, Plan):
        return raw
    try:
        return Plan.model_validate(raw)
    except ValidationError as exc:
        raise PlanInvalidError(f"schema: {_first_error(exc)}") from None


def _check_tool_args(step: Step, registry: ToolRegistry) -> None:
    if step.tool is None:
        raise PlanInvalidError(f"step {step.id}: a tool step must name a tool")
    if step.tool not in registry:
        known = ", ".join(sorted(registry.names()))
        raise PlanInvalidError(f"step {step.id}: unknown tool {step.tool!r} (known: {known})")
    input_model = registry.get(step.tool).input_model
    # An argument that is exactly a reference ("$2") takes its value only at run time,
    # so the checks that depend on it are left to the call; everything else is checked.
    deferred = {key for key, value in step.args.items() if is_whole_reference(value)}
    try:
        input_model.model_validate(step.args)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            if loc and loc[0] in deferred:
                continue
            where = ".".join(str(part) for part in loc)
            raise PlanInvalidError(
                f"step {step.id}: bad arguments for tool {step.tool!r}: {where}: {error['msg']}"
            ) from None


def _check_kind(step: Step, registry: ToolRegistry) -> None:
    if step.kind is StepKind.TOOL:
        _check_tool_args(step, registry)
        return
    if step.tool is not None:
        raise PlanInvalidError(f"step {step.id}: a {step.kind} step must not name a tool")
    if step.kind is StepKind.VALIDATE and not step.dependencies:
        raise PlanInvalidError(f"step {step.id}: a validate step must refer to what it checks")


def _topological_order(steps: Mapping[int, Step]) -> list[int]:
    """Step ids, each after all of its dependencies (graphlib's order).

    Raises:
        PlanInvalidError: The dependencies form a cycle; the message names its steps in
            order, as :class:`graphlib.CycleError` reports it.
    """
    sorter = TopologicalSorter({sid: step.dependencies & steps.keys()
                                for sid, step in steps.items()})
    try:
        return list(sorter.static_order())
    except CycleError as exc:
        cycle = exc.args[1]
        raise PlanInvalidError(
            "dependency cycle: " + " -> ".join(f"step {sid}" for sid in cycle)) from None


def step_depths(plan: Plan, completed: frozenset[int] = frozenset()) -> dict[int, int]:
    """Depth of each step: 0 when it waits for no step of this plan, else 1 + its deepest
    dependency. Steps in ``completed`` (earlier plans' results, reused by a replan) are
    satisfied dependencies.

    Raises:
        PlanInvalidError: The plan has a dangling reference or a cycle.
    """
    steps = plan.by_id()
    for step in plan.steps:
        for dep in sorted(step.dependencies):
            if dep == step.id:
                raise PlanInvalidError(f"step {step.id} depends on itself")
            if dep not in steps and dep not in completed:
                raise PlanInvalidError(f"step {step.id}: dangling reference to step {dep}")
    depths: dict[int, int] = {}
    for sid in _topological_order(steps):
        deps = steps[sid].dependencies & steps.keys()
        depths[sid] = 1 + max(depths[d] for d in deps) if deps else 0
    return depths


def validate_plan(
    raw: Mapping[str, Any] | Plan,
    *,
    registry: ToolRegistry,
    max_steps: int,
    max_fan_out: int,
    completed: frozenset[int] = frozenset(),
    used_ids: frozenset[int] = frozenset(),
) -> Plan:
    """Check a plan against every rule and return it parsed.

    Rules, in the order they are checked: the schema; at most ``max_steps`` steps;
    each step's kind (tool steps name a registered tool and their arguments fit its
    input model); no dangling reference and no cycle; exactly one ``synthesize`` step,
    which nothing depends on and which every other step leads to; at most
    ``max_fan_out`` steps at any one depth.

    Args:
        raw: The plan as JSON-shaped data, or an already parsed plan.
        registry: The tools a plan may call.
        max_steps: Cap on the number of steps.
        max_fan_out: Cap on the number of steps at one depth of the DAG.
        completed: For a replan: ids of earlier steps that succeeded, which the new plan
            may refer to (their results are reused, not run again).
        used_ids: For a replan: every id earlier plans used; new steps must not reuse
            them.

    Returns:
        The parsed, valid plan.

    Raises:
        PlanInvalidError: The first rule broken, with a reason naming the step.
    """
    plan = parse_plan(raw)
    if len(plan.steps) > max_steps:
        raise PlanInvalidError(f"{len(plan.steps)} steps exceed the cap of {max_steps}")
    reused = sorted(step.id for step in plan.steps if step.id in used_ids)
    if reused:
        raise PlanInvalidError(f"steps {reused} reuse ids of earlier steps; number new "
                               f"steps from {max(used_ids) + 1}")
    for step in plan.steps:
        _check_kind(step, registry)
    depths = step_depths(plan, completed)

    sinks = [step.id for step in plan.steps if step.kind is StepKind.SYNTHESIZE]
    if len(sinks) != 1:
        raise PlanInvalidError(f"a plan needs exactly one synthesize step, found {len(sinks)}")
    final = sinks[0]
    steps = plan.by_id()
    for step in plan.steps:
        if final in step.dependencies:
            raise PlanInvalidError(f"step {step.id} depends on the synthesize step {final}")
    leads_to_final = {final}
    for sid in sorted(depths, key=depths.__getitem__, reverse=True):
        if sid in leads_to_final:
            leads_to_final.update(steps[sid].dependencies & steps.keys())
    unused = sorted(set(steps) - leads_to_final)
    if unused:
        raise PlanInvalidError(f"steps {unused} do not lead to the synthesize step {final}")

    width: dict[int, int] = defaultdict(int)
    for depth in depths.values():
        width[depth] += 1
    widest = max(width.values())
    if widest > max_fan_out:
        raise PlanInvalidError(f"fan-out width {widest} exceeds the cap of {max_fan_out}")
    return plan


def check_tool_step(step: Step, registry: ToolRegistry) -> None:
    """Check one tool step on its own (a ReAct action): a known tool and arguments that
    fit its input model (an argument that is exactly a reference is checked at the call).

    Raises:
        PlanInvalidError: No tool, an unknown tool, or arguments that do not fit.
    """
    _check_tool_args(step, registry)
