"""Session history and example episodes as a prompt's data section holds them: bounded
in count and characters by the memory settings (:mod:`shared.settings_sessions`)."""

from __future__ import annotations

import json
from typing import Any

from shared.llm.base import truncate_untrusted
from shared.settings import get_settings


def bounded_session(session: dict[str, Any], *, count: int | None = None) -> dict[str, Any]:
    """``session`` (``{"id"?, "summary", "recent": [{"goal", "status", "answer",
    "error"}]}``) with at most ``count`` (default ``SESSION_HISTORY_GOALS``) recent
    goals (the newest), each text cut to ``SESSION_ITEM_MAX_CHARS`` characters and the
    summary to ``SESSION_SUMMARY_MAX_CHARS``; empty fields are left out."""
    settings = get_settings()
    cap = settings.session_item_max_chars
    count = settings.session_history_goals if count is None else count
    recent = (session.get("recent") or [])[-count:] if count > 0 else []
    items = []
    for item in recent:
        items.append({key: truncate_untrusted(value, cap) if isinstance(value, str) else value
                      for key, value in item.items() if value is not None})
    bounded: dict[str, Any] = {"recent": items}
    if session.get("summary"):
        bounded["summary"] = truncate_untrusted(session["summary"],
                                                settings.session_summary_max_chars)
    return bounded


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str))


def bounded_examples(episodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Example episodes (``{"text", "plan", "answer"}``) as the planner sees them:
    ``{"goal", "plan": [{"id", "kind", "tool", "args"}], "outcome": "succeeded",
    "answer"}``, at most ``MEMORY_EXAMPLES``. An example longer than
    ``MEMORY_EXAMPLE_MAX_CHARS`` characters of JSON keeps only its plan's shape (no
    arguments), then has its goal and answer cut to fit."""
    settings = get_settings()
    cap = settings.memory_example_max_chars
    shown = []
    for episode in episodes[: settings.memory_examples]:
        steps = (episode.get("plan") or {}).get("steps") or []
        example = {
            "goal": episode["text"],
            "plan": [{k: s.get(k) for k in ("id", "kind", "tool", "args") if s.get(k)}
                     for s in steps],
            "outcome": "succeeded",
            "answer": episode.get("answer"),
        }
        if _size(example) > cap:
            example["plan"] = [{k: v for k, v in s.items() if k != "args"}
                               for s in example["plan"]]
        if _size(example) > cap:
            share = max(50, cap // 4)
            example["goal"] = truncate_untrusted(example["goal"], share)
            example["answer"] = truncate_untrusted(example["answer"] or "", share)
            example["plan"] = example["plan"][:20]
        shown.append(example)
    return shown
