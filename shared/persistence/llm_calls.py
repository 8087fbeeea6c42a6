"""Records of LLM calls: tokens, cost and latency of each, kept with its goal."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from shared.persistence.tables import llm_calls


def record_llm_call(
    connection: Connection,
    *,
    goal_id: uuid.UUID,
    step_id: int | None,
    purpose: str,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int,
    cost_usd: float,
    latency_s: float,
    simulated: bool,
    error: str | None = None,
) -> None:
    """Store one LLM call.

    Args:
        connection: A connection inside the caller's transaction.
        goal_id: The goal the call was made for.
        step_id: The step it was made for; None for planning calls.
        purpose: ``plan``, ``validate``, ``synthesize`` or ``react`` (a ReAct turn).
        provider: Provider name.
        model: Model name.
        input_tokens: Prompt tokens the vendor reported (tokens).
        output_tokens: Completion tokens (tokens).
        cached_tokens: Prompt tokens served from the vendor's cache (tokens).
        cost_usd: Its price (USD).
        latency_s: Its wall-clock duration (seconds).
        simulated: True when no real vendor answered it.
        error: Why it failed, if it did.
    """
    connection.execute(
        llm_calls.insert().values(
            goal_id=goal_id,
            step_id=step_id,
            purpose=purpose,
            provider=provider,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=cached_tokens,
            cost_usd=cost_usd,
            latency_s=latency_s,
            simulated=simulated,
            error=error,
        )
    )


def input_token_totals(connection: Connection, *, goal_ids: list[uuid.UUID]) -> tuple[int, int]:
    """(LLM calls, input tokens) recorded for ``goal_ids`` together."""
    row = connection.execute(
        select(func.count(), func.coalesce(func.sum(llm_calls.c.input_tokens), 0))
        .where(llm_calls.c.goal_id.in_(goal_ids))
    ).one()
    return int(row[0]), int(row[1])
