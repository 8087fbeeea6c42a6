"""``taskforce bench paper``: its scoring, its options, and one small run of it (the
measurement itself is recorded in docs/benchmarks.md; no speed is asserted here)."""

from __future__ import annotations

import pytest

from shared.errors import ConfigurationError
from taskforce_cli import bench
from taskforce_cli.bench import BENCHMARKS
from taskforce_cli.bench.paper import SETS, correct, paper, read_set


def test_answers_are_scored_loosely_after_the_run() -> None:
    assert correct("[simulated] Yes, both are American.", "yes")
    assert correct("Mariana Trench (8,800 m)", "Mariana Trench")
    assert not correct("yesterday", "yes")
    assert not correct(None, "yes")


def test_the_paper_ratios_and_sets() -> None:
    assert {name: ratio for name, (_, ratio) in SETS.items()} == {
        "hotpotqa": 1.80, "movie": 3.74, "parallelqa": 2.15}
    assert [row["id"] for row in read_set("parallelqa.jsonl", 2)] == [
        "parallelqa-1", "parallelqa-2"]


def test_its_options_reach_only_benchmarks_that_take_them() -> None:
    assert BENCHMARKS["paper"] is paper
    with pytest.raises(ConfigurationError, match="takes no option --limit"):
        bench.run("overhead", limit=3)


def test_one_goal_per_set_in_both_modes(services, tmp_path) -> None:
    plot = tmp_path / "paper.png"
    figures = paper(quick=True, progress=None, plot_dir=plot.parent)
    assert figures["goals_per_set"] == 1
    assert set(figures["sets"]) == set(SETS)
    for name, row in figures["sets"].items():
        assert row["succeeded"] == {"dag": 1, "react": 1}, name
        assert row["same_answer"] == 1, name  # the same sim model answers alike
        assert row["speedup"] == round(row["latency_mean_s"]["react"]
                                       / row["latency_mean_s"]["dag"], 2)
        assert row["paper_speedup"] == SETS[name][1]
        assert row["tokens_per_goal"]["react"] > 0 and row["tokens_per_goal"]["dag"] > 0
        assert row["simulated"]
    assert figures["provider"] == "sim (simulated)"
    assert "shared" in figures["note"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
