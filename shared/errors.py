"""Taskforce's error hierarchy: one root, kept apart by whose fault and whether to retry.

::

    TaskforceError
    ├── RequestError               a client's bad input (HTTP 422, or 404/409)
    │   ├── UnknownProviderError, PlanInvalidError, IdempotencyConflictError
    │   ├── GoalNotFoundError (404), GoalAlreadyFinishedError (409)
    │   ├── StepNotFoundError (404), StepNotAwaitingApprovalError (409)
    │   ├── AuthenticationError (401), PermissionDeniedError (403)
    │   ├── ModelNotAllowedError, QuotaExceededError (429, ``Retry-After``)
    │   └── MemoryNotFoundError (404), MemoryConflictError (409)
    ├── ConfigurationError         the operator's settings (never retried)
    ├── ToolError                  a tool call failed for good
    │   ├── RetryableToolError     ... or transiently (retried by the step)
    │   └── UnknownToolError
    ├── ReferenceError_            a step argument refers to nothing
    ├── LLMError                   an LLM call failed for good
    │   ├── RetryableLLMError      ... or transiently (429, 5xx, timeout)
    │   │   └── RateLimitedError
    │   ├── LLMRetriesExhaustedError, MalformedOutputError
    ├── BudgetExceededError        a goal's token or USD budget is spent
    └── TransientError             our own infrastructure is unavailable (HTTP 503)
        └── ServiceUnavailableError

``retryable`` is True on the classes worth retrying (:func:`is_retryable`); everything
else is final. Every exception takes plain ``str``/number arguments, so it survives
Celery's JSON serialization and pickling alike.
"""

from __future__ import annotations

from typing import ClassVar


class TaskforceError(Exception):
    """Root of every error Taskforce raises on purpose (final unless ``retryable``)."""

    retryable: ClassVar[bool] = False


def is_retryable(exc: BaseException) -> bool:
    """True when ``exc`` is a Taskforce error that a later attempt may not meet."""
    return isinstance(exc, TaskforceError) and exc.retryable


# --- a client's bad input -------------------------------------------------------------


class RequestError(TaskforceError):
    """A client's request is invalid; ``http_status`` says how the gateway answers."""

    http_status: ClassVar[int] = 422

    def detail(self) -> str:
        """The reason shown to the client."""
        return str(self)


class UnknownProviderError(RequestError):
    """The request names an LLM provider this deployment does not know."""


class PlanInvalidError(RequestError):
    """A plan breaks a rule; the goal fails with a reason starting ``plan_invalid:``.

    Raised for a client's ready-made plan (HTTP 422) and for a planner's plan (the goal
    fails).

    Args:
        reason: Human-readable description of the first rule the plan breaks.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def detail(self) -> str:
        """``plan_invalid: <reason>``."""
        return f"plan_invalid: {self.reason}"


class IdempotencyConflictError(RequestError):
    """An idempotency key was reused with a different request body (HTTP 422)."""


class GoalNotFoundError(RequestError):
    """No goal has the given id (HTTP 404)."""

    http_status: ClassVar[int] = 404


class BatchNotFoundError(RequestError):
    """No batch has the given id for this tenant (HTTP 404)."""

    http_status: ClassVar[int] = 404


class SessionNotFoundError(RequestError):
    """The tenant has no session with the given id (HTTP 404; another tenant's session
    is reported the same way)."""

    http_status: ClassVar[int] = 404


class GoalAlreadyFinishedError(RequestError):
    """The goal has already ended, so it cannot be cancelled (HTTP 409)."""

    http_status: ClassVar[int] = 409


class StepNotFoundError(RequestError):
    """The goal has no step with the given number (HTTP 404)."""

    http_status: ClassVar[int] = 404


class StepNotAwaitingApprovalError(RequestError):
    """The step is not awaiting approval (never asked, or already decided), so it cannot
    be approved or rejected (HTTP 409)."""

    http_status: ClassVar[int] = 409


class AuthenticationError(RequestError):
    """No API key, or one that is unknown, malformed or revoked (HTTP 401)."""

    http_status: ClassVar[int] = 401


class PermissionDeniedError(RequestError):
    """The API key is valid but lacks the scope the request needs (HTTP 403)."""

    http_status: ClassVar[int] = 403


class ModelNotAllowedError(RequestError):
    """The requested model is outside the allowlist, or has no known price (HTTP 422)."""


class QuotaExceededError(RequestError):
    """A tenant's quota (goals per minute, goals in flight) refuses a submission (HTTP 429).

    Args:
        message: Which quota, its limit and when to try again.
        retry_after_s: Seconds after which a retry may succeed (the ``Retry-After``
            header), or None when only a goal ending frees room.
    """

    http_status: ClassVar[int] = 429

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def __reduce__(self) -> tuple[type, tuple[str, int | None]]:
        return (type(self), (str(self), self.retry_after_s))


class MemoryNotFoundError(RequestError):
    """The tenant has no such memory item, or it has expired (HTTP 404)."""

    http_status: ClassVar[int] = 404


class MemoryConflictError(RequestError):
    """A memory write cannot apply: the item it supersedes was superseded already
    (HTTP 409)."""

    http_status: ClassVar[int] = 409


# --- the operator's settings ----------------------------------------------------------


class ConfigurationError(TaskforceError):
    """The settings are missing or inconsistent (the operator's to fix, never retried)."""


# --- tools ----------------------------------------------------------------------------


class ToolError(TaskforceError):
    """A tool call failed for a reason that retrying will not fix (bad input)."""


class RetryableToolError(ToolError):
    """A tool call failed for a transient reason (timeout, lost connection)."""

    retryable: ClassVar[bool] = True


class UnknownToolError(ToolError):
    """A plan or call names a tool that is not registered."""


class ReferenceError_(TaskforceError):
    """A step argument refers to an output that does not exist or has no such field."""


# --- LLM calls ------------------------------------------------------------------------


class LLMError(TaskforceError):
    """An LLM call failed for good (bad request, refusal, unparseable output)."""


class RetryableLLMError(LLMError):
    """An LLM call failed transiently (429, 5xx, timeout) and may be retried.

    Args:
        message: Short description (vendor, HTTP status, reason); never request data.
        status_code: HTTP status of the failed attempt; None for timeouts and lost
            connections.
        retry_after_s: Wait the server asked for (seconds, from ``Retry-After`` or
            ``retry-after-ms``), if any.
    """

    retryable: ClassVar[bool] = True

    def __init__(self, message: str, status_code: int | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class RateLimitedError(RetryableLLMError):
    """The fleet-wide rate limit of a (provider, model) would make this call wait longer
    than allowed; the call was not made and consumed no capacity.

    Raised by :mod:`shared.llm.ratelimit` before any request is sent, so the caller can
    put the step back on the queue for ``retry_after_s`` instead of holding a worker
    thread.

    Args:
        message: Which limit (provider, model, requests or tokens per minute) refused.
        retry_after_s: When capacity is expected to be free again (seconds from now).
    """

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message, status_code=None, retry_after_s=retry_after_s)

    def __reduce__(self) -> tuple[type, tuple[str, float | None]]:
        # Pickle both arguments: the default keeps only ``args`` (the message).
        return (type(self), (str(self), self.retry_after_s))


class LLMRetriesExhaustedError(LLMError):
    """Transient LLM failures went on past the retry budget (attempts or seconds).

    Final on purpose: ``shared.llm.retry`` is the one retry layer, so nothing above it
    should retry the call again.

    Args:
        message: What the last attempt failed with and how many attempts were made.
        status_code: HTTP status of the last attempt, if it had one.
    """

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class MalformedOutputError(LLMError):
    """A successful response whose answer is not a JSON object (or was cut off).

    Args:
        message: What is wrong (parser error or truncation), never the raw text.
        raw: The answer text as received, truncated to 2,000 characters, so that the
            caller can attempt one repair.
        input_tokens: Input tokens the provider billed for the call.
        output_tokens: Output tokens the provider billed for the call.
        simulated: True when the response came from a simulator (the vendor simulator's
            fingerprint or message id, see :mod:`shared.llm.wire`), not a real model.
    """

    RAW_LIMIT = 2_000

    def __init__(self, message: str, raw: str = "", input_tokens: int = 0,
                 output_tokens: int = 0, simulated: bool = False) -> None:
        super().__init__(message)
        self.raw = raw[: self.RAW_LIMIT]
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.simulated = simulated


class BudgetExceededError(TaskforceError):
    """An LLM call would take the goal past its token or USD budget; it was not made and
    the goal stops with reason ``budget_exceeded:``."""


# --- our own infrastructure -----------------------------------------------------------


class TransientError(TaskforceError):
    """Our own infrastructure (database, broker) failed in a way a later attempt may not."""

    retryable: ClassVar[bool] = True


class ServiceUnavailableError(TransientError):
    """A backing service (Redis or Postgres) cannot be reached right now (HTTP 503)."""
