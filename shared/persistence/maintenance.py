"""Queries behind beat's maintenance jobs."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Date, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from shared.persistence.tables import cost_rollups, llm_calls


def _utc_day(timestamp: ColumnElement) -> ColumnElement:
    # A literal, not a parameter: GROUP BY must repeat the SELECT's expression exactly.
    return cast(func.timezone(literal_column("'UTC'"), timestamp), Date)


def rollup_costs(connection: Connection, *, days: int) -> int:
    """Recompute ``cost_rollups`` for the last ``days`` days (UTC). Returns rows written."""
    day = _utc_day(llm_calls.c.created_at)
    totals = (
        select(day, llm_calls.c.provider, llm_calls.c.model, func.count(),
               func.sum(llm_calls.c.input_tokens), func.sum(llm_calls.c.output_tokens),
               func.sum(llm_calls.c.cost_usd), func.now())
        .where(llm_calls.c.created_at >= _utc_day(func.now()) - days)
        .group_by(day, llm_calls.c.provider, llm_calls.c.model)
    )
    insert = pg_insert(cost_rollups).from_select(
        ["day", "provider", "model", "calls", "input_tokens", "output_tokens", "cost_usd",
         "updated_at"], totals)
    excluded = insert.excluded
    return connection.execute(
        insert.on_conflict_do_update(
            index_elements=[cost_rollups.c.day, cost_rollups.c.provider, cost_rollups.c.model],
            set_={"calls": excluded.calls, "input_tokens": excluded.input_tokens,
                  "output_tokens": excluded.output_tokens, "cost_usd": excluded.cost_usd,
                  "updated_at": func.now()},
        )
    ).rowcount
