"""The ``sim`` brain: plans for the real goal sets, answers, checks, and the sample corpus.

No database and no network: search outputs are built by hand (or from the bundled
corpus's first numbers) and calculator steps run through the real calculator.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shared.domain.models import StepKind
from shared.domain.refs import resolve
from shared.domain.validation import step_depths, validate_plan
from shared.llm.providers.sim import answers, goal_parsing, heuristics, movies, quantities
from shared.llm.providers.sim.heuristics import plan_for_goal, synthesize_answer, validate_output
from shared.tools.calculator import evaluate
from shared.tools.registry import build_registry
from shared.tools.search import first_number

REPO = Path(__file__).parents[1]
GOALS = REPO / "examples" / "goals"
CORPUS = REPO / "taskforce_cli" / "corpus" / "world_facts.jsonl"
SIM_MODULES = (heuristics, goal_parsing, quantities, answers, movies)

# Measured when this was written: movies 362/362, HotpotQA 1057/1065 (99.2%) with two
# lookups, ParallelQA 67/78 (85.9%) with as many lookups as ``parallel_width``. The
# floors leave a small margin for future tuning.
HOTPOT_TWO_LOOKUPS_FLOOR = 0.97
PARALLELQA_WIDTH_FLOOR = 0.82


@cache
def _goals(name: str) -> tuple[dict[str, Any], ...]:
    lines = (GOALS / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


@cache
def _registry():
    return build_registry()


def _validated(goal: str):
    return validate_plan(plan_for_goal(goal), registry=_registry(), max_steps=32, max_fan_out=16)


def _searches(plan) -> list:
    return [s for s in plan.steps if s.kind is StepKind.TOOL and s.tool == "search"]


def _synth(plan):
    return next(s for s in plan.steps if s.kind is StepKind.SYNTHESIZE)


def _run(goal: str, search_value: dict[str, float | None]) -> str:
    """Run a plan without a database: each search returns the value its query maps to."""
    plan = _validated(goal)
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
    for record in _goals(name):
        _validated(record["goal"])


def test_movie_plans_look_up_the_four_movies_in_parallel() -> None:
    for record in _goals("movie_recommendation"):
        plan = _validated(record["goal"])
        searches = _searches(plan)
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
    records = _goals("hotpotqa_comparison")
    two = 0
    for record in records:
        plan = _validated(record["goal"])
        searches = _searches(plan)
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
    plan = _validated(goal)
    assert [s.args["query"] for s in _searches(plan)] == entities
    assert _synth(plan).args["inputs"] == ["$1", "$2"]


def test_parallelqa_lookups_match_the_parallel_width() -> None:
    records = _goals("parallelqa")
    matched = 0
    for record in records:
        plan = _validated(record["goal"])
        searches = _searches(plan)
        depths = step_depths(plan)
        assert all(depths[s.id] == 0 for s in searches)
        matched += len(searches) == record["parallel_width"]
    assert matched / len(records) >= PARALLELQA_WIDTH_FLOOR


def test_parallelqa_plan_shape() -> None:
    goal = (
        "If Mariana Trench was 20% shallower and the Puerto Rico Trench was 20% deeper, "
        "which one would be shallower?"
    )
    plan = _validated(goal)
    assert [s.args["query"] for s in _searches(plan)] == [
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
    plan = _validated(goal)
    assert _synth(plan).kind is StepKind.SYNTHESIZE


def test_arithmetic_goals_use_the_calculator() -> None:
    plan = _validated("What is 17 * 23?")
    assert [s.tool for s in plan.steps if s.kind is StepKind.TOOL] == ["calculator"]
    assert _run("What is 17 * 23?", {}) == "391"


def test_plans_are_deterministic() -> None:
    for name in ("movie_recommendation", "hotpotqa_comparison", "parallelqa"):
        for record in _goals(name)[:60]:
            assert plan_for_goal(record["goal"]) == plan_for_goal(record["goal"])


# --- answers for movies and two-entity questions ---------------------------------------


def test_movie_answer_is_one_of_the_options() -> None:
    for record in _goals("movie_recommendation")[:40]:
        plan = plan_for_goal(record["goal"])
        args = dict(plan["steps"][-1]["args"])
        args["inputs"] = [{"query": t, "hits": [], "value": None} for t in args["labels"]]
        answer = synthesize_answer({"goal": record["goal"], "args": args})
        assert answer in args["options"]
        assert answer == synthesize_answer({"goal": record["goal"], "args": args})


def test_movie_answer_prefers_options_sharing_words_with_liked_movies() -> None:
    goal = (
        "Find a movie similar to Raiders of the Lost Ark, American Beauty, "
        "Star Wars Episode V - The Empire Strikes Back, Groundhog Day\n"
        "Options:\nGod Bless America\nMusic From Another Room\nTurbo A Power Rangers Movie\n"
        "Star Wars Episode IV - A New Hope"
    )
    args = plan_for_goal(goal)["steps"][-1]["args"]
    args = {**args, "inputs": [{"hits": []}] * 4}
    assert synthesize_answer({"goal": goal, "args": args}) == "Star Wars Episode IV - A New Hope"


def _hit(title: str, snippet: str) -> dict[str, Any]:
    return {"query": title, "hits": [{"title": title, "snippet": snippet}], "value": None}


def test_hotpot_answers() -> None:
    same = synthesize_answer(
        {
            "goal": "Were Scott Derrickson and Ed Wood of the same nationality?",
            "args": {
                "task": "compare",
                "inputs": [
                    _hit("Scott Derrickson", "Scott Derrickson (born 1966): American director."),
                    _hit("Ed Wood", "Ed Wood (1924-1978): American filmmaker."),
                ],
                "labels": ["Scott Derrickson", "Ed Wood"],
            },
        }
    )
    assert same.startswith("yes")
    older = synthesize_answer(
        {
            "goal": "Who was born first, Alpha Person or Beta Person?",
            "args": {
                "task": "compare",
                "inputs": [
                    _hit("Alpha Person", "Alpha Person (born 1950)."),
                    _hit("Beta Person", "Beta Person (born 1931)."),
                ],
                "labels": ["Alpha Person", "Beta Person"],
            },
        }
    )
    assert older == "Beta Person"
    unknown = {
        "goal": "Which writer was from England, Henry Roth or Robert Erskine Childers?",
        "args": {
            "task": "compare",
            "inputs": [{"hits": []}, {"hits": []}],
            "labels": ["Henry Roth", "Robert Erskine Childers"],
        },
    }
    assert synthesize_answer(unknown) in unknown["args"]["labels"]


# --- validation of outputs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "criteria", "ok"),
    [
        (None, "anything", False),
        ("", "anything", False),
        ({"query": "q", "hits": [], "value": None}, "relevant hits", False),
        ({"query": "q", "hits": [{"title": "t"}], "value": None}, "a numeric value", False),
        ({"query": "q", "hits": [{"title": "t"}], "value": 8849.0}, "a numeric value", True),
        ({"expression": "1 + 1", "value": 2}, "the number of items", True),
        ({"query": "q", "hits": [{"title": "t"}], "value": None}, "mentions the river", True),
    ],
)
def test_validate_output(target: Any, criteria: str, ok: bool) -> None:
    verdict = validate_output({"goal": "g", "criteria": criteria, "target": target})
    assert verdict["ok"] is ok
    assert verdict["reason"]


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


# --- the bundled corpus ------------------------------------------------------------------

# The number syntax of the search tool: not glued to a word ("K2" holds no number).
_FIRST_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])-?\d+(?:\.\d+)?")
_UNITS = {
    "depth": "metres",
    "height": "metres",
    "length": "km",
    "area": "km²",
    "population": "people",
    "speed": "km/h",
}


@cache
def _corpus() -> tuple[dict[str, str], ...]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


def test_corpus_lines_parse_and_hold_numbers() -> None:
    docs = _corpus()
    assert len(docs) >= 50
    titles = [d["title"] for d in docs]
    assert len(titles) == len(set(titles))
    for doc in docs:
        assert set(doc) == {"title", "body", "source"}
        assert doc["source"] == "Taskforce sample corpus"
        assert first_number(doc["body"]) is not None, doc["title"]
        attribute = doc["title"].split()[-1]
        if attribute in _UNITS:  # the first number is the quantity, in the expected unit
            number = _FIRST_NUMBER.search(doc["body"])
            assert doc["body"][number.end() :].lstrip().startswith(_UNITS[attribute]), doc["title"]


def _terms(text: str) -> set[str]:
    return {w.rstrip("s") for w in re.findall(r"[a-z0-9]+", text.lower())} - {"the", "of", "a"}


def test_parallelqa_queries_find_their_document_first() -> None:
    """A rough stand-in for Postgres ranking (OR-ed terms): the document of the entity
    looked up matches strictly more query terms than any other document."""
    docs = _corpus()
    checked = 0
    for record in _goals("parallelqa"):
        for step in _searches(_validated(record["goal"])):
            query = step.args["query"]
            entity = query.rsplit(" ", 2 if query.endswith("top speed") else 1)[0].lower()
            own = [d for d in docs if entity in d["title"].lower()]
            if not own:
                continue  # e.g. a misspelt name in the goal
            scores = sorted(
                (
                    (len(_terms(query) & _terms(d["title"] + " " + d["body"])), d["title"])
                    for d in docs
                ),
                reverse=True,
            )
            assert scores[0][1] in {d["title"] for d in own}, query
            assert scores[0][0] > scores[1][0], query
            checked += 1
    assert checked > 150
