"""The ``sim`` model's answers: movie choices, two-entity comparisons, and its verdicts
on outputs that a ``validate`` step checks."""

from __future__ import annotations

from typing import Any

import pytest

from shared.llm.providers.sim.heuristics import plan_for_goal, synthesize_answer, validate_output
from tests.support.sim_plans import goal_set

# --- answers for movies and two-entity questions ---------------------------------------


def test_movie_answer_is_one_of_the_options() -> None:
    for record in goal_set("movie_recommendation")[:40]:
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


