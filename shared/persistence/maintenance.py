"""Queries behind beat's maintenance jobs."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection


def delete_old_goals(connection: Connection, *, older_than_days: int) -> int:
    """Delete goals finished more than ``older_than_days`` days ago and everything that
    hangs off them (cascade). Returns the number of goals deleted."""
    ids = list(
        connection.execute(
            text(
                "DELETE FROM goals WHERE finished_at < now() - make_interval(days => :days) "
                "RETURNING id"
            ),
            {"days": older_than_days},
        ).scalars()
    )
    if ids:
        connection.execute(text("DELETE FROM step_runs WHERE goal_id = ANY(:ids)"), {"ids": ids})
    return len(ids)


def rollup_costs(connection: Connection, *, days: int) -> int:
    """Recompute ``cost_rollups`` for the last ``days`` days (UTC). Returns rows written."""
    return connection.execute(
        text(
            """
            INSERT INTO cost_rollups (day, provider, model, calls, input_tokens,
                                      output_tokens, cost_usd, updated_at)
            SELECT (created_at AT TIME ZONE 'UTC')::date, provider, model, count(*),
                   sum(input_tokens), sum(output_tokens), sum(cost_usd), now()
            FROM llm_calls
            WHERE created_at >= (now() AT TIME ZONE 'UTC')::date - :days
            GROUP BY 1, 2, 3
            ON CONFLICT (day, provider, model) DO UPDATE SET
                calls = EXCLUDED.calls, input_tokens = EXCLUDED.input_tokens,
                output_tokens = EXCLUDED.output_tokens, cost_usd = EXCLUDED.cost_usd,
                updated_at = now()
            """
        ),
        {"days": days},
    ).rowcount
