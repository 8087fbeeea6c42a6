"""The step protocol in SQL: claim with a lease, commit the result, queue dependents.

1. :func:`claim_step` moves a ``queued`` step (or a ``running`` one whose lease has
   expired) to ``running`` with a lease, in one conditional UPDATE. A second delivery of
   the same message finds nothing to claim and does nothing.
2. The worker runs the step outside any transaction.
3. :func:`complete_step` commits the result only if this worker still holds the lease
   (same owner, same attempt), and in the same transaction marks every dependent whose
   dependencies have now all succeeded as ``queued``. Only after the commit does the
   caller publish their messages. The goal row is locked first, so two siblings
   finishing at once cannot both miss their common dependent. It is one call of the
   server-side function ``taskforce_complete_step`` (migration 0002): one round trip.

A crash between commit and publish leaves steps ``queued`` with no message; the
reconciler re-publishes them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, text, update
from sqlalchemy.engine import Connection

from shared.domain.models import GoalStatus, StepStatus
from shared.persistence import driver
from shared.persistence.goals import lock_goal
from shared.persistence.tables import step_runs, steps

# Raw SQL: the claim is one round trip (a data-modifying CTE that claims the step, opens
# its step_runs row and reads its dependencies' outputs), which Core cannot express as
# one statement. It runs on the driver connection (shared.persistence.driver: the step
# protocol's hot path), hence psycopg placeholders; status values are bound from the
# enums (_CLAIM_STATUSES).
_CLAIM = """
    WITH claimed AS (
        UPDATE steps s
        SET status = %(running)s, attempt = s.attempt + 1, lease_owner = %(worker)s,
            lease_expires_at = now() + make_interval(secs => %(lease_s)s),
            started_at = coalesce(s.started_at, now())
        FROM goals g
        WHERE s.goal_id = %(goal_id)s AND s.step_id = %(step_id)s AND g.id = s.goal_id
          AND g.status = %(goal_running)s
          AND s.attempt < %(max_attempts)s
          AND (s.status = %(queued)s
               OR (s.status = %(running)s AND s.lease_expires_at < now()))
        RETURNING s.goal_id, s.step_id, s.kind, s.tool, s.args, s.depends_on, s.attempt,
                  s.approval, g.text AS goal_text, g.provider, g.model, g.mode, g.tenant_id
    ), run AS (
        INSERT INTO step_runs (goal_id, step_id, attempt, worker)
        SELECT goal_id, step_id, attempt, %(worker)s FROM claimed
        RETURNING id
    )
    SELECT claimed.*, run.id AS run_id,
           (SELECT coalesce(jsonb_object_agg(d.step_id, d.result), '{}'::jsonb)
            FROM steps d
            WHERE d.goal_id = claimed.goal_id AND d.step_id = ANY(claimed.depends_on)
           ) AS inputs
    FROM claimed, run
"""
_CLAIM_STATUSES = {"running": StepStatus.RUNNING.value, "queued": StepStatus.QUEUED.value,
                   "goal_running": GoalStatus.RUNNING.value}

# Raw SQL: the commit phase in one round trip, a call of the server-side function
# taskforce_complete_step (migrations 0002 and 0004 hold its body), on the driver
# connection like the claim. Its status literals ('running', 'succeeded', 'queued', ...)
# are part of those migrations, which are history and stay as written; they match
# StepStatus and GoalStatus.
_COMPLETE = (
    "SELECT committed, step_kind, goal_status, ready, ready_kinds FROM taskforce_complete_step("
    "%(goal_id)s, %(step_id)s, %(worker)s, %(attempt)s, %(run_id)s, CAST(%(result)s AS jsonb))"
)


def _end_run(connection: Connection, *, run_id: int, outcome: str, error: str | None) -> None:
    connection.execute(
        update(step_runs).where(step_runs.c.id == run_id)
        .values(finished_at=func.now(), outcome=outcome, error=error)
    )


def _held(claim: ClaimedStep, worker: str) -> tuple[ColumnElement[bool], ...]:
    """The step is still running under ``worker``'s lease at ``claim.attempt``."""
    return (steps.c.goal_id == claim.goal_id, steps.c.step_id == claim.step_id,
            steps.c.status == StepStatus.RUNNING.value, steps.c.lease_owner == worker,
            steps.c.attempt == claim.attempt)


@dataclass(frozen=True)
class ClaimedStep:
    """A step this worker now holds the lease on.

    Attributes:
        goal_id: Goal id.
        step_id: Step number.
        kind: ``tool``, ``validate`` or ``synthesize``.
        tool: Tool name for tool steps.
        args: Arguments with references not yet resolved.
        attempt: This claim's attempt number (1 for the first).
        run_id: Id of the ``step_runs`` row recording this attempt.
        inputs: Committed outputs of the dependencies, by step number.
        goal_text: The goal's text.
        provider: The goal's LLM provider.
        model: The goal's LLM model.
        approval: ``approved`` once a person approved the step, else None (a step whose
            tool requires approval then goes to ``awaiting_approval`` instead of running).
        mode: The goal's execution mode, ``dag`` or ``react`` (a ``react`` goal takes its
            next turn once the step commits).
        tenant_id: The tenant that owns the goal.
    """

    goal_id: uuid.UUID
    step_id: int
    kind: str
    tool: str | None
    args: dict[str, Any]
    attempt: int
    run_id: int
    inputs: dict[int, Any]
    goal_text: str
    provider: str
    model: str
    approval: str | None = None
    mode: str = "dag"
    tenant_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Completion:
    """What committing a step's result decided.

    Attributes:
        committed: False when the lease was lost (another attempt took the step over);
            the result was then discarded.
        ready: Dependents now ``queued`` as ``(step_id, kind)``, to publish after the
            commit.
        kind: The committed step's kind.
        goal_status: The goal's status when the result was committed.
    """

    committed: bool
    ready: list[tuple[int, str]]
    kind: str | None
    goal_status: str | None


def claim_step(
    connection: Connection,
    *,
    goal_id: uuid.UUID,
    step_id: int,
    worker: str,
    lease_s: float,
    max_attempts: int,
) -> ClaimedStep | None:
    """Claim a step for ``worker`` with a lease of ``lease_s`` seconds.

    Returns:
        The claimed step with its dependencies' outputs, or None when there is nothing
        to claim: the step is not queued (already running under a live lease, done,
        skipped), its goal is not running, or it has used ``max_attempts`` claims.
    """
    row = driver.one_row(connection, _CLAIM, {
        **_CLAIM_STATUSES, "goal_id": goal_id, "step_id": step_id, "worker": worker,
        "lease_s": lease_s, "max_attempts": max_attempts,
    })
    if row is None:
        return None
    return ClaimedStep(
        goal_id=row["goal_id"],
        step_id=row["step_id"],
        kind=row["kind"],
        tool=row["tool"],
        args=row["args"],
        attempt=row["attempt"],
        run_id=row["run_id"],
        inputs={int(k): v for k, v in row["inputs"].items()},
        goal_text=row["goal_text"],
        provider=row["provider"],
        model=row["model"],
        approval=row["approval"],
        mode=row["mode"],
        tenant_id=row["tenant_id"],
    )


def complete_step(
    connection: Connection, *, claim: ClaimedStep, worker: str, result_json: str
) -> Completion:
    """Commit ``claim``'s result (JSON text) and queue the dependents it made ready.

    One statement: it locks the goal row, commits the result only if ``worker`` still
    holds the lease at ``claim.attempt``, ends the step's run, and moves every pending
    dependent whose dependencies have all succeeded to ``queued``. Run it in autocommit
    mode, or inside a transaction that also finishes the goal; publish
    ``Completion.ready`` only after the commit.
    """
    row = driver.one_row(connection, _COMPLETE, {
        "goal_id": claim.goal_id, "step_id": claim.step_id, "worker": worker,
        "attempt": claim.attempt, "run_id": claim.run_id, "result": result_json,
    })
    if row is None:  # a function returning one row always does; as Result.one() would
        raise AssertionError("taskforce_complete_step returned no row")
    return Completion(
        committed=row["committed"],
        ready=list(zip(row["ready"], row["ready_kinds"], strict=True)),
        kind=row["step_kind"], goal_status=row["goal_status"],
    )


def fail_step(
    connection: Connection, *, claim: ClaimedStep, worker: str, error: str
) -> bool:
    """Record that ``claim`` failed for good. Returns False if the lease was lost.

    The caller then ends the goal (see ``shared.persistence.goals.finish_goal``).
    """
    lock_goal(connection, goal_id=claim.goal_id)
    failed = connection.execute(
        update(steps).where(*_held(claim, worker))
        .values(status=StepStatus.FAILED.value, error=error, finished_at=func.now(),
                lease_expires_at=None)
    ).rowcount
    _end_run(connection, run_id=claim.run_id, outcome="failed" if failed else "lease_lost",
             error=error)
    return bool(failed)


def release_step(connection: Connection, *, claim: ClaimedStep, worker: str,
                 reason: str) -> bool:
    """Put a claimed step back to ``queued`` without counting the attempt (it was not
    run: a rate limit refused its LLM call). Returns False if the lease was lost."""
    released = connection.execute(
        update(steps).where(*_held(claim, worker))
        .values(status=StepStatus.QUEUED.value, attempt=steps.c.attempt - 1,
                lease_owner=None, lease_expires_at=None, queued_at=func.now())
    ).rowcount
    _end_run(connection, run_id=claim.run_id, outcome="released", error=reason)
    return bool(released)


def await_approval(connection: Connection, *, claim: ClaimedStep, worker: str) -> bool:
    """Park a claimed step whose tool requires approval: ``running → awaiting_approval``
    with ``approval_requested_at`` set, its lease released and the attempt not counted
    (it did not run). The worker returns at once; no thread waits for the decision.

    Returns:
        False if the lease was lost (another attempt holds the step; nothing changed).
    """
    parked = connection.execute(
        update(steps).where(*_held(claim, worker))
        .values(status=StepStatus.AWAITING_APPROVAL.value, attempt=steps.c.attempt - 1,
                lease_owner=None, lease_expires_at=None,
                approval_requested_at=func.coalesce(steps.c.approval_requested_at,
                                                    func.now()))
    ).rowcount
    _end_run(connection, run_id=claim.run_id, outcome="awaiting_approval", error=None)
    return bool(parked)


# Raw SQL: renewing every lease a worker holds in one statement joins steps with a JSON
# recordset (jsonb_to_recordset with a column definition list); the status is bound.
_RENEW = text(
    """
    UPDATE steps s SET lease_expires_at = now() + make_interval(secs => :lease_s)
    FROM jsonb_to_recordset(CAST(:held AS jsonb))
         AS h(goal_id uuid, step_id integer, worker text, attempt integer)
    WHERE s.goal_id = h.goal_id AND s.step_id = h.step_id AND s.status = :running
      AND s.lease_owner = h.worker AND s.attempt = h.attempt
    RETURNING s.goal_id, s.step_id
    """
).bindparams(running=StepStatus.RUNNING.value)


def renew_leases(
    connection: Connection, *, held: list[tuple[ClaimedStep, str]], lease_s: float
) -> set[tuple[uuid.UUID, int]]:
    """Extend the leases of ``held`` ``(claim, worker)`` pairs to ``lease_s`` seconds from
    now, in one statement.

    Returns:
        ``(goal_id, step_id)`` of the leases renewed; a pair missing from it is no longer
        held by its worker at its attempt (the lease expired and another attempt took
        the step over, or the goal ended).
    """
    payload = [
        {"goal_id": str(claim.goal_id), "step_id": claim.step_id, "worker": worker,
         "attempt": claim.attempt}
        for claim, worker in held
    ]
    rows = connection.execute(_RENEW, {"lease_s": lease_s, "held": json.dumps(payload)})
    return {(row.goal_id, row.step_id) for row in rows}
