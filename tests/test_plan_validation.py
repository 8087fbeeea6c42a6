"""Plan validation: every rule, checked before anything is enqueued."""

from __future__ import annotations

import pytest

from shared.domain.models import StepKind
from shared.domain.refs import resolve
from shared.domain.validation import step_depths, validate_plan
from shared.errors import PlanInvalidError, ReferenceError_
from shared.tools.registry import build_registry

REGISTRY = build_registry()


def check(plan: dict, *, max_steps: int = 32, max_fan_out: int = 16):
    return validate_plan(plan, registry=REGISTRY, max_steps=max_steps, max_fan_out=max_fan_out)


def search(step_id: int, query: str = "x") -> dict:
    return {"id": step_id, "kind": "tool", "tool": "search", "args": {"query": query}}


def synth(step_id: int, *refs: int) -> dict:
    return {"id": step_id, "kind": "synthesize",
            "args": {"instruction": "answer", "inputs": [f"${r}" for r in refs]}}


def reason(plan: dict, **caps: int) -> str:
    with pytest.raises(PlanInvalidError) as info:
        check(plan, **caps)
    return info.value.reason


def test_a_diamond_plan_is_valid_and_its_dependencies_come_from_references() -> None:
    plan = check({"steps": [
        search(1),
        {"id": 2, "kind": "tool", "tool": "calculator", "args": {"expression": "$1.value * 2"}},
        {"id": 3, "kind": "tool", "tool": "calculator", "args": {"expression": "${1.value} + 1"}},
        {"id": 4, "kind": "validate", "args": {"target": "$3", "criteria": "a number"},
         "depends_on": [2]},
        synth(5, 2, 4),
    ]})
    steps = plan.by_id()
    assert steps[2].dependencies == {1}
    assert steps[3].dependencies == {1}
    assert steps[4].dependencies == {2, 3}
    assert steps[5].dependencies == {2, 4}
    assert step_depths(plan) == {1: 0, 2: 1, 3: 1, 4: 2, 5: 3}
    assert steps[5].kind is StepKind.SYNTHESIZE


def test_a_cycle_is_rejected_naming_its_steps() -> None:
    text = reason({"steps": [
        {"id": 1, "kind": "tool", "tool": "calculator", "args": {"expression": "$2.value"}},
        {"id": 2, "kind": "tool", "tool": "calculator", "args": {"expression": "$1.value"}},
        synth(3, 1, 2),
    ]})
    assert text in ("dependency cycle: step 1 -> step 2 -> step 1",
                    "dependency cycle: step 2 -> step 1 -> step 2")


def test_a_cycle_behind_other_steps_names_only_the_cycle() -> None:
    text = reason({"steps": [
        {"id": 1, "kind": "tool", "tool": "calculator", "args": {"expression": "1 + 1"}},
        {"id": 2, "kind": "tool", "tool": "calculator",
         "args": {"expression": "$1.value + $4.value"}},
        {"id": 3, "kind": "tool", "tool": "calculator", "args": {"expression": "$2.value"}},
        {"id": 4, "kind": "tool", "tool": "calculator", "args": {"expression": "$3.value"}},
        synth(5, 4),
    ]})
    assert text.startswith("dependency cycle: ")
    parts = text.removeprefix("dependency cycle: ").split(" -> ")
    named = {int(part.split()[-1]) for part in parts}
    assert named == {2, 3, 4}


def test_a_step_that_depends_on_itself_is_rejected() -> None:
    assert "step 1 depends on itself" in reason(
        {"steps": [{**search(1), "depends_on": [1]}, synth(2, 1)]}
    )


def test_an_unknown_tool_is_rejected_with_the_known_ones() -> None:
    text = reason({"steps": [{"id": 1, "kind": "tool", "tool": "browse", "args": {}},
                             synth(2, 1)]})
    assert text.startswith("step 1: unknown tool 'browse'")
    assert "calculator" in text and "search" in text


def test_arguments_are_checked_against_the_tool_input_model() -> None:
    text = reason({"steps": [
        {"id": 1, "kind": "tool", "tool": "search", "args": {"query": "x", "limit": 500}},
        synth(2, 1),
    ]})
    assert text.startswith("step 1: bad arguments for tool 'search': limit:")
    assert "less than or equal to 20" in text
    missing = reason({"steps": [{"id": 1, "kind": "tool", "tool": "calculator", "args": {}},
                                synth(2, 1)]})
    assert "expression: Field required" in missing


def test_a_whole_value_reference_defers_its_type_check_to_run_time() -> None:
    plan = check({"steps": [
        search(1),
        {"id": 2, "kind": "tool", "tool": "search", "args": {"query": "x", "limit": "$1.value"}},
        synth(3, 2),
    ]})
    assert plan.by_id()[2].dependencies == {1}


def test_a_dangling_reference_is_rejected() -> None:
    assert reason({"steps": [search(1), synth(2, 1, 7)]}) == (
        "step 2: dangling reference to step 7"
    )
    assert "dangling reference to step 9" in reason(
        {"steps": [{**search(1), "depends_on": [9]}, synth(2, 1)]}
    )


def test_the_step_count_cap_holds() -> None:
    plan = {"steps": [search(i) for i in range(1, 6)] + [synth(6, 1, 2, 3, 4, 5)]}
    assert reason(plan, max_steps=5) == "6 steps exceed the cap of 5"
    assert len(check(plan, max_steps=6).steps) == 6


def test_the_fan_out_width_cap_holds() -> None:
    plan = {"steps": [search(i) for i in range(1, 6)] + [synth(6, 1, 2, 3, 4, 5)]}
    assert reason(plan, max_fan_out=4) == "fan-out width 5 exceeds the cap of 4"
    assert check(plan, max_fan_out=5)


def test_exactly_one_synthesize_step_is_required() -> None:
    assert "exactly one synthesize step, found 0" in reason({"steps": [search(1)]})
    assert "found 2" in reason({"steps": [search(1), synth(2, 1), synth(3, 1)]})


def test_every_step_must_lead_to_the_synthesize_step() -> None:
    assert reason({"steps": [search(1), search(2), synth(3, 1)]}) == (
        "steps [2] do not lead to the synthesize step 3"
    )


def test_schema_errors_name_the_field() -> None:
    assert reason({"steps": []}).startswith("schema: steps:")
    assert reason({"steps": [{"id": 1, "kind": "dance"}]}).startswith("schema: steps.0.kind:")
    assert "used twice" in reason({"steps": [search(1), search(1), synth(2, 1)]})
    assert reason({"steps": [{**search(1), "kind": "synthesize"}]}) == (
        "step 1: a synthesize step must not name a tool"
    )


def test_references_resolve_whole_values_and_inside_text() -> None:
    outputs = {1: {"value": 10994.0, "hits": [{"title": "t"}]}, 2: "plain"}
    assert resolve("$1.value", outputs) == 10994.0
    assert resolve("$1.value * (1 - 0.2)", outputs) == "10994.0 * (1 - 0.2)"
    assert resolve({"a": ["$2", "${1.hits}"]}, outputs) == {"a": ["plain", [{"title": "t"}]]}
    with pytest.raises(ReferenceError_, match="no field 'depth'"):
        resolve("$1.depth", outputs)
    with pytest.raises(ReferenceError_, match="step 3"):
        resolve("$3", outputs)
    assert resolve("$4.value", {4: {"value": None}}) is None
    with pytest.raises(ReferenceError_, match="is null: step 4 produced no value"):
        resolve("$4.value * 2", {4: {"value": None}})
