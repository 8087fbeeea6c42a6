"""Taskforce's error hierarchy: one root, retryable versus final, misuse versus failure.

Every exception takes plain ``str`` arguments only, so it survives Celery's JSON
serialization and pickling alike.
"""

from __future__ import annotations


class TaskforceError(Exception):
    """Root of every error Taskforce raises on purpose."""


class ConfigurationError(TaskforceError):
    """The settings are missing or inconsistent (a caller's misuse, never retried)."""


class PlanInvalidError(TaskforceError):
    """A plan breaks a rule; the goal fails with a reason starting ``plan_invalid:``.

    Args:
        reason: Human-readable description of the first rule the plan breaks.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ToolError(TaskforceError):
    """A tool call failed for a reason that retrying will not fix (bad input)."""


class RetryableToolError(ToolError):
    """A tool call failed for a transient reason (timeout, lost connection)."""


class UnknownToolError(ToolError):
    """A plan or call names a tool that is not registered."""


class ReferenceError_(TaskforceError):
    """A step argument refers to an output that does not exist or has no such field."""


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
    """

    RAW_LIMIT = 2_000

    def __init__(self, message: str, raw: str = "", input_tokens: int = 0,
                 output_tokens: int = 0) -> None:
        super().__init__(message)
        self.raw = raw[: self.RAW_LIMIT]
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


class GoalNotFoundError(TaskforceError):
    """No goal has the given id."""


class ServiceUnavailableError(TaskforceError):
    """A backing service (Redis or Postgres) cannot be reached right now."""


class GoalAlreadyFinishedError(TaskforceError):
    """The goal has already ended, so it cannot be cancelled (HTTP 409)."""


class IdempotencyConflictError(TaskforceError):
    """An idempotency key was reused with a different request body (HTTP 422)."""


class BudgetExceededError(TaskforceError):
    """An LLM call would take the goal past its token or USD budget; it was not made and
    the goal stops with reason ``budget_exceeded:``."""
