"""The ``sim`` brain: plans for the real goal sets, answers, checks, and the sample corpus.

No database and no network: search outputs are built by hand (or from the bundled
corpus's first numbers) and calculator steps run through the real calculator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.domain.models import StepKind
from shared.domain.refs import resolve
from shared.domain.validation import step_depths
from shared.llm.providers.sim import (
    answers,
    goal_parsing,
    heuristics,
    modifiers,
    movies,
    quantities,
)
from shared.llm.providers.sim.heuristics import plan_for_goal, synthesize_answer
from shared.tools.calculator import evaluate
from tests.support.sim_plans import goal_set, search_steps, validated_plan

SIM_MODULES = (heuristics, goal_parsing, quantities, modifiers, answers, movies)

# Measured when this was written: movies 362/362, HotpotQA 1057/1065 (99.2%) with two
# lookups, ParallelQA 67/78 (85.9%) with as many lookups as ``parallel_width``. The
# floors leave a small margin for future tuning.
HOTPOT_TWO_LOOKUPS_FLOOR = 0.97
PARALLELQA_WIDTH_FLOOR = 0.82


def _synth(plan):
    return next(s for s in plan.steps if s.kind is StepKind.SYNTHESIZE)


def _run(goal: str, search_value: dict[str, float | None]) -> str:
    """Run a plan without a database: each search returns the value its query maps to."""
    plan = validated_plan(goal)
    outputs: dict[int, Any] = {}
    for step in sorted(plan.steps, key=lambda s: s.id):
        args = resolve(step.args, outputs)
        if step.kind is StepKind.SYNTHESIZE:
            return synthesize_answer({"goal": goal, "args": args})
        if step.tool == "search":
            value = search_value[args["query"]]
            hit = {"title": args["query"], "source": "test", "snippet": f"{value}", "rank": 1.0}
            outputs[step.id] = {"query": args["query"], "hits": [hit], "value": value}
        else:
            outputs[step.id] = {
                "expression": args["expression"],
                "value": evaluate(args["expression"]),
            }
    raise AssertionError("the plan has no synthesize step")


# --- plans for the goal sets -----------------------------------------------------------


@pytest.mark.parametrize("name", ["movie_recommendation", "hotpotqa_comparison", "parallelqa"])
def test_every_goal_gets_a_valid_plan(name: str) -> None:
    for record in goal_set(name):
        validated_plan(record["goal"])


def test_movie_plans_look_up_the_four_movies_in_parallel() -> None:
    for record in goal_set("movie_recommendation"):
        plan = validated_plan(record["goal"])
        searches = search_steps(plan)
        depths = step_depths(plan)
        assert len(searches) == 4, record["goal"]
        assert all(depths[s.id] == 0 for s in searches)
        synth = _synth(plan)
        assert synth.args["inputs"] == [f"${s.id}" for s in searches]
        assert len(synth.args["options"]) == 4
        assert set(synth.args["options"]) <= set(record["goal"].split("\n"))


def test_movie_titles_with_commas_stay_whole() -> None:
    liked, options = movies.movie_request(
        "Find a movie similar to Minority Report, The Lion King, Shrek, Monsters, Inc\n"
        "Options:\nA\nB\nC\nD"
    )
    assert liked == ["Minority Report", "The Lion King", "Shrek", "Monsters, Inc"]
    assert options == ["A", "B", "C", "D"]
    liked, _ = movies.movie_request(
        "Find a movie similar to A Clockwork Orange, The Usual Suspects, "
        "Monty Python's Life of Brian, Lock, Stock & Two Smoking Barrels"
    )
    assert liked[-1] == "Lock, Stock & Two Smoking Barrels"


def test_hotpot_plans_mostly_make_two_parallel_lookups() -> None:
    records = goal_set("hotpotqa_comparison")
    two = 0
    for record in records:
        plan = validated_plan(record["goal"])
        searches = search_steps(plan)
        depths = step_depths(plan)
        assert all(depths[s.id] == 0 for s in searches)
        two += len(searches) == 2
    assert two / len(records) >= HOTPOT_TWO_LOOKUPS_FLOOR


@pytest.mark.parametrize(
    ("goal", "entities"),
    [
        (
            "Were Scott Derrickson and Ed Wood of the same nationality?",
            ["Scott Derrickson", "Ed Wood"],
        ),
        (
            "Which writer was from England, Henry Roth or Robert Erskine Childers?",
            ["Henry Roth", "Robert Erskine Childers"],
        ),
        (
            "Hayden is a singer-songwriter from Canada, but where does Buck-Tick hail from?",
            ["Hayden", "Buck-Tick"],
        ),
    ],
)
def test_hotpot_lookups_name_the_compared_entities(goal: str, entities: list[str]) -> None:
    plan = validated_plan(goal)
    assert [s.args["query"] for s in search_steps(plan)] == entities
    assert _synth(plan).args["inputs"] == ["$1", "$2"]


def test_parallelqa_lookups_match_the_parallel_width() -> None:
    records = goal_set("parallelqa")
    matched = 0
    for record in records:
        plan = validated_plan(record["goal"])
        searches = search_steps(plan)
        depths = step_depths(plan)
        assert all(depths[s.id] == 0 for s in searches)
        matched += len(searches) == record["parallel_width"]
    assert matched / len(records) >= PARALLELQA_WIDTH_FLOOR


def test_parallelqa_plan_shape() -> None:
    goal = (
        "If Mariana Trench was 20% shallower and the Puerto Rico Trench was 20% deeper, "
        "which one would be shallower?"
    )
    plan = validated_plan(goal)
    assert [s.args["query"] for s in search_steps(plan)] == [
        "Mariana Trench depth",
        "Puerto Rico Trench depth",
    ]
    calculators = [s.args["expression"] for s in plan.steps if s.tool == "calculator"]
    assert calculators == ["$1.value * (1 - 0.2)", "$2.value * (1 + 0.2)"]
    synth = _synth(plan).args
    assert synth["labels"] == ["Mariana Trench", "Puerto Rico Trench"]
    assert synth["comparison"] == "min"
    assert max(step_depths(plan).values()) == 2


@pytest.mark.parametrize(
    ("goal", "values", "expected"),
    [
        (
            (
                "If Mariana Trench was 20% shallower and the Puerto Rico Trench was 20% deeper, "
                "which one would be shallower?"
            ),
            {"Mariana Trench depth": 10994, "Puerto Rico Trench depth": 8376},
            "Mariana Trench",
        ),
        (
            (
                "Considering a cheetah that runs 20% faster and a peregrine falcon flying 30% "
                "slower compared to their maximum velocity, which one is faster?"
            ),
            {"cheetah top speed": 112, "peregrine falcon top speed": 389},
            "peregrine falcon",
        ),
        (
            (
                "If the Pacific Ocean shrank by 1.5 times and the Indian Ocean expands by 2.5 "
                "times, which ocean will have larger area?"
            ),
            {"Pacific Ocean area": 165_250_000, "Indian Ocean area": 70_560_000},
            "Indian Ocean",
        ),
        (
            (
                "If the Yangtze River is lengthened by 10% and the Mississippi River is shortened "
                "by 5%, what would be the ratio of their lengths?"
            ),
            {"Yangtze River length": 6300, "Mississippi River length": 3766},
            "1.937",  # 6930 / 3577.7
        ),
        (
            (
                "Among the area ratios of the Sahara Desert to the Arabian Desert, and the "
                "Arabian Desert to the Kalahari Desert, which value is the smallest?"
            ),
            {
                "Sahara Desert area": 9_200_000,
                "Arabian Desert area": 2_330_000,
                "Kalahari Desert area": 900_000,
            },
            "2.589",  # 2,330,000 / 900,000
        ),
    ],
)
def test_parallelqa_answers_follow_from_the_numbers(
    goal: str, values: dict[str, float], expected: str
) -> None:
    assert _run(goal, values).startswith(expected)


def test_missing_values_are_reported() -> None:
    answer = synthesize_answer(
        {
            "goal": "Which is deeper?",
            "args": {
                "task": "numeric",
                "inputs": [{"query": "a", "hits": [], "value": None}, {"value": 3.0}],
                "labels": ["Alpha Trench", "Beta Trench"],
                "comparison": "max",
            },
        }
    )
    assert "Alpha Trench" in answer and "no numeric value" in answer


def test_numeric_synthesis_on_a_hand_built_payload() -> None:
    payload = {
        "goal": "Which is shallower, the Alpha Trench or the Beta Trench?",
        "args": {
            "task": "numeric",
            "inputs": [{"value": 8000}, {"value": 9000}],
            "labels": ["Alpha Trench", "Beta Trench"],
            "comparison": "min",
        },
    }
    assert synthesize_answer(payload).startswith("Alpha Trench")
    payload["args"]["comparison"] = "max"
    assert synthesize_answer(payload).startswith("Beta Trench")


# --- other goals ------------------------------------------------------------------------

PARAGRAPH = (
    "The Industrial Revolution began in Great Britain and spread to Western Europe and "
    "the United States, changing how goods were made and how people lived. "
) * 14


@pytest.mark.parametrize(
    "goal",
    ["hello", "What is 2+2?", PARAGRAPH[:2000], " ", "It cost $36 million in 1999.", "x" * 3000],
)
def test_free_text_gets_a_valid_plan(goal: str) -> None:
    plan = validated_plan(goal)
    assert _synth(plan).kind is StepKind.SYNTHESIZE


def test_arithmetic_goals_use_the_calculator() -> None:
    plan = validated_plan("What is 17 * 23?")
    assert [s.tool for s in plan.steps if s.kind is StepKind.TOOL] == ["calculator"]
    assert _run("What is 17 * 23?", {}) == "391"


def test_plans_are_deterministic() -> None:
    for name in ("movie_recommendation", "hotpotqa_comparison", "parallelqa"):
        for record in goal_set(name)[:60]:
            assert plan_for_goal(record["goal"]) == plan_for_goal(record["goal"])


# --- the simulator never reads data ------------------------------------------------------


def test_simulator_modules_do_no_io_and_never_see_answers() -> None:
    # A record's reference answer would be read through the key "answer".
    forbidden = (
        "open(",
        ".jsonl",
        '"answer"',
        "'answer'",
        "examples/goals",
        "read_text",
        "pathlib",
        "import os",
        "import random",
        "sleep(",
        " hash(",
        "urllib",
        "socket",
    )
    for module in SIM_MODULES:
        source = Path(module.__file__).read_text(encoding="utf-8")
        for text in forbidden:
            assert text not in source, f"{module.__name__} contains {text!r}"
