"""Batches of real goals from each of the three sets, through real workers."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from taskforce_cli.batch import read_goals, run_batch
from taskforce_cli.results import summarize
from tests.conftest import GOALS_DIR

pytestmark = pytest.mark.slow


def run_set(name: str, limit: int, tmp_path: Path) -> list[dict]:
    items = read_goals(GOALS_DIR / name, limit=limit)
    assert len(items) == limit
    output = tmp_path / "results.jsonl"
    results = run_batch(items, output=output, timeout_s=240, max_in_flight=4)
    written = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(r["id"] for r in written) == sorted(i.input_id for i in items)
    failures = {r["id"]: r["error"] for r in results if r["status"] != "succeeded"}
    assert not failures
    return results


def lookups(result: dict) -> list[dict]:
    return [s for s in result["steps"] if s["tool"] == "search"]


def overlap(steps: list[dict]) -> bool:
    """True when every step was running at one common instant."""
    starts = [datetime.fromisoformat(s["started_at"]) for s in steps]
    ends = [datetime.fromisoformat(s["finished_at"]) for s in steps]
    return max(starts) < min(ends)


def test_movie_goals_run_their_four_lookups_in_parallel(workers, tmp_path, db) -> None:
    results = run_set("movie_recommendation.jsonl", 12, tmp_path)
    for result in results:
        assert len(lookups(result)) == 4
        assert overlap(lookups(result)), result["id"]
        assert result["answer"].startswith("[simulated]")
    with db.connect() as connection:
        stored = connection.execute(
            text("SELECT count(*) FROM episodes WHERE goal_id = ANY(:ids)"),
            {"ids": [r["goal_id"] for r in results]},
        ).scalar()
    assert stored == len(results)
    summary = summarize(results)
    assert summary["by_status"] == {"succeeded": 12}
    assert summary["tokens"] == sum(r["tokens"] for r in results) > 0


def test_parallelqa_goals_look_up_compute_and_compare(workers, tmp_path) -> None:
    results = run_set("parallelqa.jsonl", 12, tmp_path)
    for result in results:
        assert len(lookups(result)) >= 2
        assert overlap(lookups(result)), result["id"]
        kinds = [s["tool"] or s["kind"] for s in result["steps"]]
        assert "calculator" in kinds and kinds[-1] == "synthesize"


def test_hotpotqa_comparisons_run_two_lookups_then_compare(workers, tmp_path) -> None:
    results = run_set("hotpotqa_comparison.jsonl", 12, tmp_path)
    for result in results:
        assert len(lookups(result)) == 2
        assert overlap(lookups(result)), result["id"]
        assert result["steps"][-1]["kind"] == "synthesize"
