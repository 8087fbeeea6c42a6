"""Untrusted content in prompts is cut to ``LLM_UNTRUSTED_MAX_CHARS`` characters per item:
the function itself, the roles that apply it, and a huge tool output on the wire."""

from __future__ import annotations

import json

from shared.domain.models import GoalRequest
from shared.llm import roles
from shared.llm.base import (
    DATA_CLOSE,
    DATA_OPEN,
    read_data_section,
    render,
    truncate_untrusted,
)
from shared.settings import overridden_settings
from shared.tools.registry import default_registry


def test_a_long_string_keeps_its_head_and_says_how_much_was_cut() -> None:
    assert truncate_untrusted("x" * 150, 100) == "x" * 100 + "…[truncated 50 chars]"


def test_values_within_the_limit_are_returned_unchanged() -> None:
    for value in ("x" * 100, {"a": [1, 2, 3]}, None, 7, ["y"] * 10):
        assert truncate_untrusted(value, 100) is value


def test_a_large_json_value_becomes_its_json_text_cut() -> None:
    value = {"rows": list(range(1_000))}
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    cut = truncate_untrusted(value, 100)
    assert cut == text[:100] + f"…[truncated {len(text) - 100} chars]"


def test_the_roles_cut_outputs_errors_and_earlier_answers() -> None:
    huge = "B" * 5_000
    with overridden_settings(LLM_UNTRUSTED_MAX_CHARS=1_000):
        synth = roles.synthesize_request("g", model="m", args={
            "instruction": "sum up", "inputs": [{"value": huge}, "short"]})
        check = roles.validate_request("g", model="m", criteria="c", target=huge)
        plan = roles.plan_request(
            "g", model="m", registry=default_registry(),
            replan={"completed": [{"id": 1, "output": huge}],
                    "failed": [{"id": 2, "error": huge}], "next_step_id": 3},
            repair={"error": huge, "previous": huge})
    inputs = synth.data["args"]["inputs"]
    assert inputs[0].endswith("…[truncated 4012 chars]") and len(inputs[0]) < 1_100
    assert inputs[1] == "short" and synth.data["args"]["instruction"] == "sum up"
    assert check.data["target"] == "B" * 1_000 + "…[truncated 4000 chars]"
    replan = plan.data["replan"]
    assert replan["completed"][0]["output"] == check.data["target"]
    assert replan["failed"][0]["error"] == check.data["target"]
    assert replan["next_step_id"] == 3
    assert plan.data["repair"] == {"error": check.data["target"],
                                   "previous": check.data["target"]}
    assert plan.data["goal"] == "g"  # the client's goal text is not untrusted output


def test_a_huge_tool_output_reaches_the_wire_cut_and_inside_the_data_section(
        run_goal, llm_simulator) -> None:
    marker = "UNTRUSTED-OUTPUT-"
    huge = (marker * 2_000)[:30_000]  # under the step-args limit, far over the default 4,000
    goal = "Report the echoed text (truncation check 31)"
    view = run_goal(GoalRequest(goal=goal, provider="openai", plan={"steps": [
        {"id": 1, "kind": "tool", "tool": "echo", "args": {"value": huge}},
        {"id": 2, "kind": "synthesize", "args": {"inputs": ["$1"]}, "depends_on": [1]},
    ]}))
    assert view.status == "succeeded", view.error
    assert view.steps[0].result["value"] == huge  # stored whole; only the prompt is cut
    calls = [c for c in list(llm_simulator.simulator.received)
             if c.purpose == "synthesize" and c.data.get("goal") == goal]
    assert len(calls) == 1
    user = calls[0].user
    assert huge not in user
    assert user.count("…[truncated ") == 1
    start, end = user.index(DATA_OPEN), user.index(DATA_CLOSE)
    assert start < user.index("…[truncated ") < end
    assert start < user.index(marker) and user.rindex(marker) < end
    sent = read_data_section(user)["args"]["inputs"][0]
    assert len(sent) <= 4_000 + len("…[truncated 30000 chars]")
    assert sent.startswith('{"delay_s":0.0,"simulated":true,"value":"' + marker)
    assert len(user) < 4_000 + len(render(roles.synthesize_request(
        goal, model="m", args={"inputs": [""]})).user) + 100
