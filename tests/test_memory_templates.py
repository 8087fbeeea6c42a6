"""Goal templates, plan carry-over, the sim's reading of follow-ups, and the bounds on
memory in prompts (pure functions: no services needed)."""

from __future__ import annotations

import json

from shared.llm import roles
from shared.llm.base import read_data_section, render
from shared.llm.providers.sim.followups import resolve, summarize
from shared.llm.providers.sim.heuristics import plan_for_goal
from shared.memory.templates import carry_over, template_of
from shared.settings import overridden_settings
from shared.tools.registry import default_registry


def carried(source: str, target: str) -> tuple[dict | None, str]:
    return carry_over(template_of(source), source, template_of(target), plan_for_goal(source))


def test_goals_differing_only_in_entities_share_a_template() -> None:
    a = template_of("Were Scott Derrickson and Ed Wood of the same nationality?")
    b = template_of("Were Hayao Miyazaki and Tim Burton of the same nationality?")
    assert a.text == b.text == "were <E1> and <E2> of the same nationality?"
    assert b.entities == {"<E1>": "Hayao Miyazaki", "<E2>": "Tim Burton"}
    assert template_of("What is 17 * 23?").text == "what is <N1> * <N2>?"
    assert template_of('Search for "green tea"').entities == {"<Q1>": "green tea"}
    assert (template_of("What is 2 * 2?").text != template_of("What is 2 * 3?").text)
    shouted = template_of("BOTH Skyang Kangri and Pumari Chhish are both what?")
    assert shouted.entities == {"<E1>": "Skyang Kangri", "<E2>": "Pumari Chhish"}


def test_a_plan_is_carried_over_with_its_entities_substituted() -> None:
    plan, why = carried("What is 17 * 23?", "What is 40 * 5?")
    assert why == ""
    assert plan["steps"][0]["args"] == {"expression": "40 * 5"}
    assert plan["steps"][1]["args"]["inputs"] == ["$1"]  # references are never touched
    plan, _ = carried("Were Scott Derrickson and Ed Wood of the same nationality?",
                      "Were Hayao Miyazaki and Tim Burton of the same nationality?")
    queries = [s["args"]["query"] for s in plan["steps"] if s["kind"] == "tool"]
    assert queries == ["Hayao Miyazaki", "Tim Burton"]


def test_a_plan_with_numbers_derived_from_its_goal_is_not_carried_to_other_numbers() -> None:
    source = ("If Mariana Trench was 20% shallower and the Puerto Rico Trench was 20% "
              "deeper, which one would be shallower?")
    same_numbers = source.replace("Mariana", "Java").replace("Puerto Rico", "Tonga")
    plan, why = carried(source, same_numbers)
    assert why == "" and "Java Trench depth" in json.dumps(plan)
    assert "$1.value * (1 - 0.2)" in json.dumps(plan)  # derived from 20%, still right
    derived = {"steps": [{"id": 1, "kind": "tool", "tool": "calculator",
                          "args": {"expression": "100 * 1.2"}},
                         {"id": 2, "kind": "synthesize", "args": {"inputs": ["$1"]}}]}
    plan, why = carry_over(template_of("Raise 100 by 20%"), "Raise 100 by 20%",
                           template_of("Raise 100 by 30%"), derived)
    assert plan is None and why == "the plan holds numbers not in its goal"


def test_a_plan_holding_names_not_in_its_goal_is_not_carried_to_other_names() -> None:
    plan = {"steps": [{"id": 1, "kind": "tool", "tool": "search",
                       "args": {"query": "French cuisine"}},
                      {"id": 2, "kind": "synthesize", "args": {"inputs": ["$1"]}}]}
    result, why = carry_over(template_of("What do people eat in France?"),
                             "What do people eat in France?",
                             template_of("What do people eat in Spain?"), plan)
    assert result is None and why == "the plan holds names not in its goal"


def test_an_entity_holding_a_dollar_sign_is_never_substituted() -> None:
    plan, why = carried('Search for "tea"', 'Search for "$1"')
    assert plan is None and "$" in why


def test_the_sim_reads_a_follow_up_from_the_session_data_only() -> None:
    session = {"recent": [{"goal": "What is 17 * 23?", "status": "succeeded",
                           "answer": "[simulated] 391"}]}
    assert resolve("Double that number", session) == "What is 391 * 2?"
    assert resolve("What is the previous answer times 3?", session) == "What is 391 times 3?"
    assert resolve("Double that number", None) == "Double that number"
    failed = {"recent": [{"goal": "x", "status": "failed", "answer": None, "error": "boom"}]}
    assert resolve("Double that number", failed) == "Double that number"
    named = {"recent": [{"goal": "x", "status": "succeeded", "answer": "[simulated] Fargo"}]}
    assert resolve("Who directed the previous answer?", named) == "Who directed Fargo?"


def test_session_history_and_examples_are_bounded_in_the_data_section() -> None:
    recent = [{"goal": f"goal {i} " + "x" * 500, "status": "succeeded",
               "answer": "y" * 500} for i in range(10)]
    episodes = [{"text": f"episode {i}", "answer": "a" * 3_000,
                 "plan": plan_for_goal("What is 17 * 23?")} for i in range(6)]
    with overridden_settings(SESSION_HISTORY_GOALS=3, SESSION_ITEM_MAX_CHARS=100,
                             SESSION_SUMMARY_MAX_CHARS=200, MEMORY_EXAMPLES=2,
                             MEMORY_EXAMPLE_MAX_CHARS=400):
        request = roles.plan_request("Double that number", model="m",
                                     registry=default_registry(),
                                     session={"summary": "s" * 1_000, "recent": recent},
                                     examples=episodes)
        system, user = render(request)
    data = read_data_section(user)
    assert user.count("<data>") == 1
    assert [item["goal"][:6] for item in data["session"]["recent"]] == [
        "goal 7", "goal 8", "goal 9"]
    assert all(len(item["answer"]) < 130 for item in data["session"]["recent"])
    assert len(data["session"]["summary"]) < 230
    assert [e["goal"] for e in data["examples"]] == ["episode 0", "episode 1"]
    assert all(e["outcome"] == "succeeded" and e["plan"] for e in data["examples"])
    assert all(len(json.dumps(e)) < 600 for e in data["examples"])


def test_the_sim_summary_keeps_goals_and_answers_within_its_bound() -> None:
    text = summarize({"summary": None, "max_chars": 200, "goals": [
        {"goal": "What is 17 * 23?", "status": "succeeded", "answer": "[simulated] 391"}]})
    assert text == "What is 17 * 23? -> 391"
    long = summarize({"summary": "z" * 5_000, "max_chars": 300, "goals": []})
    assert len(long) <= 300
