"""complete_step as one server-side function

The commit phase of the step protocol (lock the goal row, commit the step's result
under its lease, end its run, queue the dependents it made ready) in one round trip, so
the goal row lock is held only for the server's own work, never across client round
trips. A commit retried after its answer was lost (the connection dropped after the
server committed) is recognised by the lease owner and attempt, which stay on the row,
and reports the same outcome again. In READ COMMITTED each statement of a VOLATILE PL/pgSQL function takes a new
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
RETURNS TABLE (committed boolean, step_kind text, goal_status text, ready integer[],
               ready_kinds text[])
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_status text;
    v_kind text;
    v_ready integer[] := ARRAY[]::integer[];
    v_ready_kinds text[] := ARRAY[]::text[];
BEGIN
    SELECT g.status INTO v_status FROM goals g WHERE g.id = p_goal FOR UPDATE;

    UPDATE steps s
       SET status = 'succeeded', result = p_result, error = NULL, finished_at = now(),
           lease_expires_at = NULL
     WHERE s.goal_id = p_goal AND s.step_id = p_step AND s.status = 'running'
       AND s.lease_owner = p_worker AND s.attempt = p_attempt
    RETURNING s.kind INTO v_kind;

    IF v_kind IS NULL THEN
        -- Committed already by this very attempt (a commit retried after its answer
        -- was lost)? Then report it again, with the dependents it queued.
        SELECT s.kind INTO v_kind FROM steps s
         WHERE s.goal_id = p_goal AND s.step_id = p_step AND s.status = 'succeeded'
           AND s.lease_owner = p_worker AND s.attempt = p_attempt;
        IF v_kind IS NULL THEN
            UPDATE step_runs SET finished_at = now(), outcome = 'lease_lost'
             WHERE id = p_run AND outcome IS NULL;
            RETURN QUERY SELECT false, NULL::text, v_status, v_ready, v_ready_kinds;
            RETURN;
        END IF;
        SELECT coalesce(array_agg(s.step_id ORDER BY s.step_id), ARRAY[]::integer[]),
               coalesce(array_agg(s.kind ORDER BY s.step_id), ARRAY[]::text[])
          INTO v_ready, v_ready_kinds
          FROM steps s
         WHERE s.goal_id = p_goal AND s.status = 'queued' AND p_step = ANY(s.depends_on);
        RETURN QUERY SELECT true, v_kind, v_status, v_ready, v_ready_kinds;
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
            RETURNING s.step_id, s.kind)
        SELECT coalesce(array_agg(q.step_id ORDER BY q.step_id), ARRAY[]::integer[]),
               coalesce(array_agg(q.kind ORDER BY q.step_id), ARRAY[]::text[])
          INTO v_ready, v_ready_kinds FROM queued q;
    END IF;

    RETURN QUERY SELECT true, v_kind, v_status, v_ready, v_ready_kinds;
END
$$;
"""


def upgrade() -> None:
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS taskforce_complete_step(uuid, integer, text, integer, bigint, jsonb)"
    )
