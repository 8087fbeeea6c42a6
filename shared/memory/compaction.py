"""Session compaction: fold a long session's older goals into its running summary.

Run by beat (``taskforce.memory.compact_sessions``), never on the request path: a goal's
prompts read the summary as it is. One pass takes at most ``SESSION_COMPACT_BATCH``
sessions that have at least ``SESSION_COMPACT_MIN_GOALS`` finished goals older than the
``SESSION_HISTORY_GOALS`` shown one by one; for each, one LLM call (the ``summarize``
role, on the provider and model of the session's newest folded goal) writes the new
summary, stored with a compare-and-set so that two passes never fold the same goals
twice.

| phase | what happens | in SQL |
|---|---|---|
| pick | sessions with enough unsummarized older goals | one grouped query |
| read | the goals to fold: after the summary, older than the newest N, finished | one query |
| summarize | the LLM call, outside any transaction | — |
| store | summary and how far it reaches, if no other pass moved it | one conditional UPDATE |
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.engine import Connection

from shared.errors import LLMError, RateLimitedError
from shared.llm import roles
from shared.llm.pricing import cost_usd
from shared.llm.providers import get_provider
from shared.llm.ratelimit import acquire_llm_capacity, estimate_tokens
from shared.persistence import llm_calls
from shared.persistence import retry as db_retry
from shared.persistence import sessions as session_store
from shared.settings import get_settings

log = logging.getLogger(__name__)


def _summarize(session: dict[str, Any], folded: list[dict[str, Any]]) -> dict[str, Any]:
    """One summarize call; returns what :func:`_store` needs (raises LLMError)."""
    newest = folded[-1]
    provider = get_provider(newest["provider"])
    request = roles.summarize_request(
        session["summary"],
        [{"goal": g["text"], "status": g["status"], "answer": g["answer"],
          "error": g["error"]} for g in folded],
        model=newest["model"])
    started = time.monotonic()
    acquire_llm_capacity(provider.name, newest["model"], estimate_tokens(request))
    result = roles.call(provider, request)
    summary = roles.parse_output(result, roles.Summary).summary
    return {"summary": summary[: get_settings().session_summary_max_chars],
            "result": result, "provider": provider.name, "model": newest["model"],
            "latency_s": time.monotonic() - started}


def compact_sessions(*, batch: int | None = None) -> dict[str, int]:
    """One compaction pass over the sessions that need it.

    Args:
        batch: Most sessions to summarize (default ``SESSION_COMPACT_BATCH``).

    Returns:
        Counts: ``sessions`` picked, ``compacted`` (summary stored), ``goals_folded``,
        ``skipped`` (nothing finished to fold, or another pass was first),
        ``failed`` (the LLM call failed; tried again next pass), ``deferred`` (the
        fleet's rate limit said wait: the pass stops there).
    """
    settings = get_settings()
    keep = settings.session_history_goals
    counts = {"sessions": 0, "compacted": 0, "goals_folded": 0, "skipped": 0, "failed": 0,
              "deferred": 0}
    picked = db_retry.run(
        lambda c: session_store.sessions_to_compact(
            c, keep_recent=keep, min_goals=settings.session_compact_min_goals,
            limit=batch or settings.session_compact_batch),
        transactional=False)
    counts["sessions"] = len(picked)
    for session in picked:
        folded = db_retry.run(
            lambda c, s=session: session_store.goals_to_fold(c, session=s, keep_recent=keep),
            transactional=False)
        if not folded:
            counts["skipped"] += 1
            continue
        try:
            made = _summarize(session, folded)
        except RateLimitedError:
            counts["deferred"] += 1
            break
        except LLMError as exc:
            log.warning("summarizing session %s failed: %s", session["id"], exc)
            counts["failed"] += 1
            continue

        def store(connection: Connection, s=session, made=made, folded=folded) -> bool:
            usage = made["result"].usage
            llm_calls.record_llm_call(
                connection, goal_id=None, step_id=None, purpose="summarize",
                provider=made["provider"], model=made["model"],
                input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                cached_tokens=usage.cached_tokens,
                cost_usd=cost_usd(made["provider"], made["model"], usage.input_tokens,
                                  usage.output_tokens, usage.cached_tokens),
                latency_s=made["latency_s"], simulated=made["result"].simulated)
            return session_store.save_summary(connection, session=s, summary=made["summary"],
                                              through=folded[-1]["created_at"],
                                              goals_added=len(folded))

        if db_retry.run(store):
            counts["compacted"] += 1
            counts["goals_folded"] += len(folded)
        else:
            counts["skipped"] += 1
    return counts
