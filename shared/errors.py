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
    """An LLM call failed transiently (429, 5xx, timeout) and may be retried."""


class GoalNotFoundError(TaskforceError):
    """No goal has the given id."""


class ServiceUnavailableError(TaskforceError):
    """A backing service (Redis or Postgres) cannot be reached right now."""
