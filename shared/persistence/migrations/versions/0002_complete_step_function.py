"""complete_step as one server-side function

The commit phase of the step protocol (lock the goal row, commit the step's result
under its lease, end its run, queue the dependents it made ready) in one round trip, so
the goal row lock is held only for the server's own work, never across client round
trips. In READ COMMITTED each statement of a VOLATILE PL/pgSQL function takes a new
snapshot, so the readiness check after the lock sees every sibling's committed result.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION taskforce_complete_step(
    p_goal uuid, p_step integer, p_worker text, p_attempt integer, p_run bigint,
    p_result jsonb)
RETURNS TABLE (committed boolean, step_kind text, goal_status text, ready integer[])
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_status text;
    v_kind text;
    v_ready integer[] := ARRAY[]::integer[];
BEGIN
    SELECT g.status INTO v_status FROM goals g WHERE g.id = p_goal FOR UPDATE;

    UPDATE steps s
       SET status = 'succeeded', result = p_result, error = NULL, finished_at = now(),
           lease_owner = NULL, lease_expires_at = NULL
     WHERE s.goal_id = p_goal AND s.step_id = p_step AND s.status = 'running'
       AND s.lease_owner = p_worker AND s.attempt = p_attempt
    RETURNING s.kind INTO v_kind;

    IF v_kind IS NULL THEN
        UPDATE step_runs SET finished_at = now(), outcome = 'lease_lost' WHERE id = p_run;
        RETURN QUERY SELECT false, NULL::text, v_status, v_ready;
        RETURN;
    END IF;

    UPDATE step_runs SET finished_at = now(), outcome = 'succeeded' WHERE id = p_run;

    IF v_status = 'running' THEN
        WITH queued AS (
            UPDATE steps s SET status = 'queued', queued_at = now()
             WHERE s.goal_id = p_goal AND s.status = 'pending'
               AND p_step = ANY(s.depends_on)
               AND NOT EXISTS (
                   SELECT 1 FROM steps d
                    WHERE d.goal_id = s.goal_id AND d.step_id = ANY(s.depends_on)
                      AND d.status <> 'succeeded')
            RETURNING s.step_id)
        SELECT coalesce(array_agg(q.step_id ORDER BY q.step_id), ARRAY[]::integer[])
          INTO v_ready FROM queued q;
    END IF;

    RETURN QUERY SELECT true, v_kind, v_status, v_ready;
END
$$;
"""


def upgrade() -> None:
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS taskforce_complete_step(uuid, integer, text, integer, bigint, jsonb)"
    )
