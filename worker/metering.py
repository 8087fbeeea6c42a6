"""Metered LLM calls: every call a goal makes fits its budget and the fleet's rate
limit, and is recorded (tokens, USD, seconds) before the step that made it commits.

The order is fixed: reserve the worst case under the goal's row lock
(:mod:`shared.persistence.budgets`), acquire fleet-wide capacity
(:mod:`shared.llm.ratelimit`), call the provider through its role
(:mod:`shared.llm.roles`), then record the call and release the reservation.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy.engine import Connection

from shared.errors import BudgetExceededError, MalformedOutputError
from shared.llm import roles
from shared.llm.base import LLMRequest, LLMResult, Usage
from shared.llm.pricing import cost_usd
from shared.llm.providers import get_provider
from shared.llm.ratelimit import acquire_llm_capacity, estimate_tokens
from shared.persistence import budgets, llm_calls
from shared.persistence import retry as db_retry
from shared.telemetry import instruments


def record_call(
    *, goal_id: uuid.UUID, step_id: int | None, purpose: str, provider: str, model: str,
    usage: Usage, latency_s: float, simulated: bool, reservation: budgets.Reservation,
    error: str | None = None,
) -> None:
    """Store one LLM call (tokens, USD, seconds) and release its budget reservation.

    Both happen in one transaction, retried through connection failures, so a call's
    cost is never counted twice nor its reservation kept after it is recorded.
    """
    cost = cost_usd(provider, model, usage.input_tokens, usage.output_tokens,
                    usage.cached_tokens)

    def work(connection: Connection) -> None:
        llm_calls.record_llm_call(
            connection, goal_id=goal_id, step_id=step_id, purpose=purpose,
            provider=provider, model=model, input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens, cached_tokens=usage.cached_tokens, cost_usd=cost,
            latency_s=latency_s, simulated=simulated, error=error,
        )
        budgets.release(connection, goal_id=goal_id, reservation=reservation, spent_usd=cost)

    db_retry.run(work)
    instruments.record_llm_cost(provider, model, float(cost))


def metered_call(
    *, goal_id: uuid.UUID, step_id: int | None, provider_name: str, model: str,
    request: LLMRequest,
) -> LLMResult:
    """Run one LLM request within the goal's budget and the fleet's rate limit, and
    record it (tokens, USD, seconds) before returning.

    Raises:
        BudgetExceededError: The call's worst case does not fit the goal's budget; it was
            not made.
        RateLimitedError: The fleet-wide limit would make it wait too long; not made.
        LLMError: The call failed for good (a malformed answer's tokens are recorded).
    """
    provider = get_provider(provider_name)
    estimate = estimate_tokens(request)
    reservation = budgets.Reservation(
        tokens=estimate,
        cost_usd=cost_usd(provider.name, model, estimate - request.max_output_tokens,
                          request.max_output_tokens),
    )
    check = db_retry.run(
        lambda c: budgets.reserve(c, goal_id=goal_id, reservation=reservation))
    if not check.granted:
        raise BudgetExceededError(f"budget_exceeded: {check.describe(reservation)}")
    started = time.monotonic()
    try:
        acquire_llm_capacity(provider.name, model, estimate)
        result = roles.call(provider, request)
    except MalformedOutputError as exc:
        # The tokens of a malformed answer were billed: record them.
        record_call(goal_id=goal_id, step_id=step_id, purpose=request.purpose,
                     provider=provider.name, model=model,
                     usage=Usage(input_tokens=exc.input_tokens, output_tokens=exc.output_tokens),
                     latency_s=time.monotonic() - started, simulated=exc.simulated,
                     reservation=reservation, error=str(exc))
        raise
    except BaseException:
        db_retry.run(lambda c: budgets.release(c, goal_id=goal_id, reservation=reservation))
        raise
    record_call(goal_id=goal_id, step_id=step_id, purpose=request.purpose,
                 provider=provider.name, model=model, usage=result.usage,
                 latency_s=result.latency_s, simulated=result.simulated,
                 reservation=reservation)
    return result
