"""ReAct turns without services: what makes an action valid, how the ``sim`` model takes
its turns (the lookups of its DAG plan, one per turn, then the same answer), the turn's
prompt, and a batch line's mode."""

from __future__ import annotations

import json
import re

import pytest

from shared.errors import ConfigurationError, PlanInvalidError
from shared.llm import roles
from shared.llm.base import render
from shared.llm.providers.sim import heuristics, react
from shared.tools.registry import default_registry
from taskforce_cli.batch import read_goals
from worker.react import check_turn, observations

GOAL = "Were Scott Derrickson and Ed Wood of the same nationality?"


def _deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


def _turn(**fields) -> roles.ReactTurn:
    return roles.ReactTurn.model_validate(fields)


def test_an_action_becomes_a_tool_step_and_an_answer_stays_text() -> None:
    step = check_turn(_turn(thought="look", tool="search", args={"query": "Ed Wood"}),
                      turn=3, tools=default_registry(), succeeded=frozenset({1, 2}))
    assert (step.id, step.kind, step.tool, step.args, step.description) == (
        3, "tool", "search", {"query": "Ed Wood"}, "look")
    assert check_turn(_turn(answer=" yes "), turn=1, tools=default_registry(),
                      succeeded=frozenset()) == "yes"


@pytest.mark.parametrize(("fields", "reason"), [
    ({"tool": "search", "args": {"query": "x"}, "answer": "yes"}, "both an action and"),
    ({"thought": "hmm"}, "neither an action"),
    ({"tool": "rm_rf", "args": {}}, "unknown tool 'rm_rf'"),
    ({"tool": "search", "args": {"query": ""}}, "bad arguments for tool 'search': query"),
    ({"tool": "search", "args": {"query": "$2.value"}}, "refers to step(s) [2]"),
    ({"tool": "search", "args": {"query": "x", "deep": _deep(200)}},
     "does not fit a step: args"),
])
def test_a_malformed_action_is_refused_with_its_reason(fields, reason) -> None:
    with pytest.raises(PlanInvalidError, match=re.escape(reason)):
        check_turn(_turn(**fields), turn=3, tools=default_registry(),
                   succeeded=frozenset({1}))


def test_the_sim_takes_its_plans_actions_one_per_turn_then_answers() -> None:
    plan = heuristics.plan_for_goal(GOAL)
    first = react.next_turn({"goal": GOAL, "history": []})
    assert first["tool"] == "search" and first["args"] == plan["steps"][0]["args"]
    history = [{"step": 1, "tool": "search", "args": first["args"],
                "observation": {"hits": [{"title": "Scott Derrickson", "snippet": "American"}],
                                "value": None}}]
    second = react.next_turn({"goal": GOAL, "history": history})
    assert second["args"] == plan["steps"][1]["args"]
    history.append({"step": 2, "tool": "search", "args": second["args"],
                    "observation": {"hits": [{"title": "Ed Wood", "snippet": "American"}],
                                    "value": None}})
    final = react.next_turn({"goal": GOAL, "history": history})
    assert "tool" not in final
    dag_args = {"task": "compare", "inputs": [history[0]["observation"],
                                              history[1]["observation"]],
                "labels": plan["steps"][2]["args"]["labels"]}
    assert final["answer"] == heuristics.synthesize_answer({"goal": GOAL, "args": dag_args})


def test_the_sim_answers_with_the_error_of_a_failed_action() -> None:
    turn = react.next_turn({"goal": GOAL, "history": [
        {"step": 1, "tool": "search", "args": {"query": "Scott Derrickson"},
         "error": "search timed out"}]})
    assert "tool" not in turn
    assert "search timed out" in turn["answer"]


def test_a_turn_states_the_history_once_with_observations_cut() -> None:
    rows = [
        {"step_id": 1, "kind": "tool", "tool": "echo", "args": {"value": 1},
         "status": "succeeded", "result": {"value": "x" * 10_000}, "error": None},
        {"step_id": 2, "kind": "tool", "tool": "search", "args": {"query": "q"},
         "status": "failed", "result": None, "error": "no index"},
    ]
    history = observations(rows)
    assert history[1] == {"step": 2, "tool": "search", "args": {"query": "q"},
                          "error": "no index"}
    request = roles.react_request(GOAL, model="m", registry=default_registry(),
                                  history=history, turns_left=4)
    system, user = render(request)
    assert system == roles.REACT_SYSTEM and roles.purpose_of(system) == "react"
    assert user.count("no index") == 1
    assert "truncated" in request.data["history"][0]["observation"]
    assert len(request.data["history"][0]["observation"]) < 4_100
    assert request.data["turns_left"] == 4


def test_a_batch_line_chooses_its_mode(tmp_path) -> None:
    goals = tmp_path / "goals.jsonl"
    goals.write_text("\n".join(json.dumps(row) for row in [
        {"id": "a", "goal": GOAL}, {"id": "b", "goal": GOAL, "mode": "react"}]))
    assert [item.request.mode for item in read_goals(goals)] == ["dag", "react"]
    goals.write_text(json.dumps({"id": "c", "goal": GOAL, "mode": "loop"}))
    with pytest.raises(ConfigurationError, match=":1: "):
        read_goals(goals)
