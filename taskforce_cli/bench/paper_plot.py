"""The plot of ``taskforce bench paper``, drawn from the figures of the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LABELS = {"hotpotqa": "HotpotQA", "movie": "Movie Rec.", "parallelqa": "ParallelQA"}
COLOURS = {"dag": "#1f77b4", "react": "#ff7f0e"}


def draw(figures: dict[str, Any], path: Path) -> Path:
    """Write a PNG of ``figures`` (what :func:`taskforce_cli.bench.paper.paper` returns)
    to ``path``: mean latency per goal by set and mode, each set's speedup next to the
    paper's, and tokens per goal. Returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    sets = list(figures["sets"])
    xs = range(len(sets))
    width = 0.38
    fig, (latency, tokens) = plt.subplots(1, 2, figsize=(11, 4.4))
    for offset, mode, name in ((-width / 2, "dag", "DAG (Taskforce)"),
                               (width / 2, "react", "ReAct (Taskforce)")):
        latency.bar([x + offset for x in xs],
                    [figures["sets"][s]["latency_mean_s"][mode] for s in sets],
                    width, label=name, color=COLOURS[mode])
        tokens.bar([x + offset for x in xs],
                   [figures["sets"][s]["tokens_per_goal"][mode] for s in sets],
                   width, label=name, color=COLOURS[mode])
    for x, s in zip(xs, sets):
        row = figures["sets"][s]
        top = max(row["latency_mean_s"].values())
        latency.annotate(f"{row['speedup']}x\n(paper {row['paper_speedup']}x)",
                         (x, top), textcoords="offset points", xytext=(0, 4),
                         ha="center", fontsize=9)
    for axes, title, unit in ((latency, "Mean latency per goal", "seconds"),
                              (tokens, "Tokens per goal", "tokens")):
        axes.set_xticks(list(xs), [LABELS.get(s, s) for s in sets])
        axes.set_title(title)
        axes.set_ylabel(unit)
        axes.legend(loc="upper left", fontsize=8)
        axes.margins(y=0.25)
    fig.suptitle(
        f"DAG vs ReAct, {figures['goals_per_set']} goals per set, {figures['provider']}, "
        f"model {figures['model']}\n{figures['date']}, {figures['machine']} "
        "(measured while the machine was shared)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
