"""The sample corpus bundled with the embedded default: well formed, and the ``sim``
planner's ParallelQA lookups find their own document first."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from shared.tools.search import first_number
from tests.support.sim_plans import goal_set, search_steps, validated_plan

CORPUS = Path(__file__).parents[1] / "taskforce_cli" / "corpus" / "world_facts.jsonl"

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
    for record in goal_set("parallelqa"):
        for step in search_steps(validated_plan(record["goal"])):
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
