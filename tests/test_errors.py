"""The error hierarchy: one root, subtrees kept apart, retryable versus final, and every
exception rebuilt from its message alone (as Celery's serializers need)."""

from __future__ import annotations

import inspect
import pickle

import pytest

from shared import errors
from shared.errors import (
    ConfigurationError,
    LLMError,
    RequestError,
    TaskforceError,
    ToolError,
    TransientError,
    is_retryable,
)

ALL = [c for _, c in inspect.getmembers(errors, inspect.isclass)
       if issubclass(c, TaskforceError)]
SUBTREES = (RequestError, ConfigurationError, ToolError, LLMError, TransientError)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_each_error_is_rebuilt_from_its_message_and_says_what_it_is(cls: type) -> None:
    exc = cls("what went wrong")
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is cls and str(again) == "what went wrong"
    assert cls.__doc__ and cls.__doc__.strip()
    assert sum(issubclass(cls, tree) for tree in SUBTREES) <= 1  # subtrees never overlap


def test_retryable_and_final_are_told_apart() -> None:
    assert {c.__name__ for c in ALL if c.retryable} == {
        "RetryableToolError", "RetryableLLMError", "RateLimitedError", "TransientError",
        "ServiceUnavailableError"}
    assert is_retryable(errors.ServiceUnavailableError("redis down"))
    assert not is_retryable(errors.LLMRetriesExhaustedError("gave up"))
    assert not is_retryable(ValueError("not ours"))


def test_request_errors_carry_their_http_status_and_reason() -> None:
    assert errors.UnknownProviderError("unknown provider 'x'").http_status == 422
    assert errors.PlanInvalidError("step 1: cycle").detail() == "plan_invalid: step 1: cycle"
    assert errors.GoalNotFoundError("no goal").http_status == 404
    assert errors.GoalAlreadyFinishedError("ended").http_status == 409


def test_a_malformed_answer_says_whether_a_simulator_sent_it() -> None:
    exc = errors.MalformedOutputError("openai: not JSON", "x" * 3000, 10, 2, simulated=True)
    assert exc.simulated and len(exc.raw) == errors.MalformedOutputError.RAW_LIMIT
    assert not errors.MalformedOutputError("openai: not JSON").simulated
