"""Submitting, reading and cancelling goals, and deciding steps that await approval: used
by the gateway and the CLI alike."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from shared import quotas
from shared.celery_app import app as celery_app
from shared.celery_app import plan_task_id, step_task_id
from shared.domain.models import ApprovalDecision, Goal, GoalRequest, GoalStatus
from shared.domain.validation import validate_plan
from shared.errors import (
    GoalAlreadyFinishedError,
    GoalNotFoundError,
    IdempotencyConflictError,
    RequestError,
    ServiceUnavailableError,
    UnknownProviderError,
)
from shared.llm.providers import KNOWN_PROVIDERS, get_provider
from shared.messages import publish_plan, publish_steps
from shared.persistence import approvals, views
from shared.persistence import goals as goal_store
from shared.persistence import keys as key_store
from shared.persistence import retry as db_retry
from shared.persistence import sessions as session_store
from shared.persistence.db import get_engine
from shared.settings import get_settings
from shared.telemetry import goal_trace
from shared.tools.registry import default_registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    """Outcome of a submission: the goal's id, and False if an idempotency key matched an
    earlier submission (nothing new was stored or enqueued)."""

    goal_id: uuid.UUID
    created: bool


def check_plan(raw: dict) -> None:
    """Validate a ready-made plan with this deployment's tools and caps.

    Raises:
        PlanInvalidError: The plan breaks a rule.
    """
    settings = get_settings()
    validate_plan(raw, registry=default_registry(), max_steps=settings.max_plan_steps,
                  max_fan_out=settings.max_fan_out)


def request_fingerprint(request: GoalRequest) -> str:
    """SHA-256 (hex) of the request's canonical JSON: what an idempotency key stands for."""
    fields = request.model_dump(mode="json")
    if fields.get("mode") == "dag":
        del fields["mode"]  # the default: keys stored before modes existed still match
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit(
    request: GoalRequest, *, check: bool = True, idempotency_key: str | None = None,
    tenant_id: uuid.UUID | None = None, batch_id: uuid.UUID | None = None,
) -> Submission:
    """Store a goal (``pending``) and enqueue ``plan_goal`` for it, inside the span that
    starts the goal's trace (:func:`shared.telemetry.goal_trace.submission`); the goal
    row keeps the trace's id and context. Arguments, checks and errors: :func:`_submit`.
    """
    with goal_trace.submission() as traced:
        return _submit(request, check=check, idempotency_key=idempotency_key,
                       tenant_id=tenant_id, batch_id=batch_id, traced=traced)


def _submit(
    request: GoalRequest, *, check: bool = True, idempotency_key: str | None = None,
    tenant_id: uuid.UUID | None = None, batch_id: uuid.UUID | None = None,
    traced: goal_trace.GoalTrace = goal_trace.GoalTrace(),
) -> Submission:
    """Store a goal (``pending``) and enqueue ``plan_goal`` for it.

    The row is committed before the message is published, so a worker never receives
    an id it cannot find. If the publish fails, the row is deleted again and
    ServiceUnavailableError raised, so the caller can retry without leaving a goal
    behind; should that delete fail too, the goal stays ``pending`` and the reconciler
    enqueues it.

    Args:
        request: The goal.
        check: Validate a ready-made plan here, so that a bad one is refused before
            anything is stored (the worker validates it again either way).
        idempotency_key: With a key this tenant used before and the same request, the
            earlier goal is returned and nothing new happens.
        tenant_id: The owner of the goal; None: the ``default`` tenant (the operator,
            whose CLI submissions skip the per-minute and in-flight quotas).
        batch_id: The batch this goal is part of (``POST /v1/batches``).

    The tenant's quotas (:mod:`shared.quotas`) apply: its model allowlist, goals per
    minute, goals in flight, and caps of ``max_tokens`` and ``max_cost_usd``.

    Raises:
        UnknownProviderError: The request names an unknown provider.
        ModelNotAllowedError: The model is not allowed, or has no known price (422).
        QuotaExceededError: Goals per minute or in flight over the tenant's quota (429).
        PlanInvalidError: ``check`` is set and the ready-made plan is invalid.
        IdempotencyConflictError: The key was used before with a different request.
        ServiceUnavailableError: The broker (or the quota store) is unavailable.
    """
    settings = get_settings()
    provider_name = request.provider or settings.default_provider
    if provider_name not in KNOWN_PROVIDERS:
        raise UnknownProviderError(
            f"unknown provider {provider_name!r} (available: {', '.join(KNOWN_PROVIDERS)})"
        )
    if check and request.plan is not None:
        check_plan(request.plan)
    model = request.model or (
        settings.default_model if provider_name == settings.default_provider
        else get_provider(provider_name).default_model
    )
    limits = quotas.limits_for(tenant_id or key_store.DEFAULT_TENANT_ID)
    quotas.check_model(provider_name, model, limits)
    quota_tenant = tenant_id if settings.tenant_quotas_enabled else None
    if quota_tenant is not None:
        quotas.check_goal_rate(quota_tenant, limits.goals_per_minute)
    fingerprint = request_fingerprint(request) if idempotency_key else None
    with get_engine().begin() as connection:
        if quota_tenant is not None:
            quotas.admit_in_flight(connection, tenant_id=quota_tenant,
                                   limit=limits.max_goals_in_flight,
                                   idempotency_key=idempotency_key)
        goal_id, stored_fingerprint = goal_store.create_goal(
            connection,
            text_=request.goal,
            provider=provider_name,
            model=model,
            metadata=request.metadata,
            requested_plan=request.plan,
            idempotency_key=idempotency_key,
            request_sha256=fingerprint,
            max_tokens=quotas.capped(request.max_tokens if request.max_tokens is not None
                                     else settings.goal_max_tokens, limits.max_tokens_per_goal),
            max_cost_usd=quotas.capped(
                request.max_cost_usd if request.max_cost_usd is not None
                else settings.goal_max_cost_usd, limits.max_cost_usd_per_goal),
            max_replans=request.max_replans,
            tenant_id=tenant_id or key_store.DEFAULT_TENANT_ID,
            mode=request.mode,
            trace_id=traced.trace_id,
            traceparent=traced.traceparent,
            batch_id=batch_id,
            session_id=request.session_id,
        )
        if request.session_id is not None and stored_fingerprint is None:
            session_store.ensure_session(connection, session_id=request.session_id,
                                         tenant_id=tenant_id or key_store.DEFAULT_TENANT_ID)
    traced.record_goal(goal_id)
    if stored_fingerprint is not None:
        if stored_fingerprint != fingerprint:
            raise IdempotencyConflictError(
                "this Idempotency-Key was used with a different request body"
            )
        return Submission(goal_id=goal_id, created=False)
    try:
        publish_plan(goal_id)
    except Exception as exc:
        try:
            with get_engine().begin() as connection:
                goal_store.delete_pending_goal(connection, goal_id=goal_id)
        except Exception:
            log.warning("goal %s stays pending for the reconciler", goal_id, exc_info=True)
        raise ServiceUnavailableError(f"message broker unavailable: {type(exc).__name__}")
    return Submission(goal_id=goal_id, created=True)


def submit_goal(request: GoalRequest, *, check: bool = True) -> uuid.UUID:
    """Like :func:`submit` without an idempotency key; returns the new goal's id."""
    return submit(request, check=check).goal_id


def _check_owner(connection: Connection, goal_id: uuid.UUID,
                 tenant_id: uuid.UUID | None) -> None:
    """Another tenant's goal is reported exactly like an unknown one (no existence leak)."""
    if tenant_id is not None and not goal_store.owned_by(
        connection, goal_id=goal_id, tenant_id=tenant_id,
        legacy_owner=key_store.DEFAULT_TENANT_ID,
    ):
        raise GoalNotFoundError(f"no goal with id {goal_id}")


def get_goal(goal_id: uuid.UUID, *, tenant_id: uuid.UUID | None = None) -> Goal:
    """The goal's current view; with ``tenant_id``, only if that tenant owns it.

    Raises:
        GoalNotFoundError: No goal has this id, or it belongs to another tenant.
    """
    with get_engine().connect() as connection:
        _check_owner(connection, goal_id, tenant_id)
        return views.get_goal_view(connection, goal_id=goal_id)


def goal_statuses(goal_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Current status of each goal, in one query."""
    with get_engine().connect() as connection:
        return goal_store.goal_statuses(connection, goal_ids=goal_ids)


def cancel_goal(goal_id: uuid.UUID, *, tenant_id: uuid.UUID | None = None) -> Goal:
    """Cancel a goal: no new step is dispatched, queued ones are revoked and skipped, the
    goal becomes ``cancelled``. Steps already running may finish, but their results are
    not used (nothing is queued after them and the goal keeps no answer).

    With ``tenant_id``, only a goal that tenant owns is cancelled.

    Raises:
        GoalNotFoundError: No goal has this id, or it belongs to another tenant.
        GoalAlreadyFinishedError: The goal had already ended.
    """

    def work(connection: Connection) -> list[int]:
        _check_owner(connection, goal_id, tenant_id)
        status = goal_store.lock_goal(connection, goal_id=goal_id)
        if status is None:
            raise GoalNotFoundError(f"no goal with id {goal_id}")
        if GoalStatus(status).is_final:
            raise GoalAlreadyFinishedError(f"goal {goal_id} has already {status}")
        queued = goal_store.queued_step_ids(connection, goal_id=goal_id)
        goal_store.finish_goal(connection, goal_id=goal_id, status=GoalStatus.CANCELLED,
                               error="cancelled: by request")
        return queued

    queued = db_retry.run(work)
    task_ids = [plan_task_id(str(goal_id))] + [step_task_id(str(goal_id), s) for s in queued]
    try:
        celery_app.control.revoke(task_ids)
    except Exception:
        log.warning("revoking the queued steps of goal %s failed", goal_id, exc_info=True)
    return get_goal(goal_id, tenant_id=tenant_id)


MAX_REASON_CHARS = 1000  # longest reason stored with an approval decision (characters)


def decide_step(goal_id: uuid.UUID, step_id: int, *, decision: ApprovalDecision, by: str,
                reason: str | None = None, tenant_id: uuid.UUID | None = None) -> Goal:
    """Approve or reject a step awaiting approval; return the goal's view after it.

    Approving queues the step and publishes its ``run_step`` after the commit (should
    the publish fail, the step stays ``queued`` and the reconciler publishes it).
    Rejecting fails the step with ``approval_rejected: <reason>`` and ends the goal
    ``failed`` (no replan: a person said no). The decision is one conditional UPDATE
    under the goal row lock, so of two concurrent decisions exactly one takes effect.

    Args:
        goal_id: The goal.
        step_id: The step's number.
        decision: ``approved`` or ``rejected``.
        by: Who decides: an API key id, ``cli`` or ``api``.
        reason: Optional reason, at most ``MAX_REASON_CHARS`` characters.
        tenant_id: The deciding tenant; another tenant's goal is a 404 like an unknown
            one. None (the CLI) decides for any tenant.

    Raises:
        RequestError: The reason is too long or holds a NUL or a lone surrogate (422).
        GoalNotFoundError: No goal has this id (404).
        StepNotFoundError: The goal has no such step (404).
        StepNotAwaitingApprovalError: The step is not awaiting approval (409).
    """
    if reason is not None:
        reason = reason.strip() or None
    if reason is not None:
        if len(reason) > MAX_REASON_CHARS:
            raise RequestError(f"reason: at most {MAX_REASON_CHARS} characters")
        if "\x00" in reason or _unencodable(reason):
            raise RequestError("reason: must be text without NUL or lone surrogates")

    def work(connection: Connection):
        _check_owner(connection, goal_id, tenant_id)
        return approvals.decide(connection, goal_id=goal_id, step_id=step_id,
                                decision=decision, by=by, reason=reason)

    decided = db_retry.run(work)
    if decided.decision is ApprovalDecision.APPROVED:
        with goal_trace.resumed(goal_trace.traceparents([goal_id]).get(goal_id), goal_id,
                                "approve step"):
            publish_steps(goal_id, [(step_id, decided.kind)])
    return get_goal(goal_id, tenant_id=tenant_id)


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
