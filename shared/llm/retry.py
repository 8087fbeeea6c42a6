"""The one retry layer for LLM calls: tenacity, exponential backoff with jitter,
``Retry-After`` honoured.

Vendors' SDKs retry on their own by default; Taskforce's providers build their clients
with ``max_retries=0`` and call :func:`call_with_retries` instead, so each failure is
retried in exactly one place.

What is retried (:class:`~shared.errors.RetryableLLMError`): HTTP 408, 409, 429 and
5xx (Anthropic's 529 "overloaded" included), timeouts and lost connections. What is
final (:class:`~shared.errors.LLMError`): every other 4xx (400, 401, 403, 404, 413,
422, ...) and an answer that is not JSON (:class:`~shared.errors.MalformedOutputError`,
which is not retried here: the caller may attempt one repair).

Waits: the server's ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)
when present, else exponential backoff from :data:`BACKOFF_INITIAL_S` doubling up to
:data:`BACKOFF_MAX_S`, plus up to :data:`BACKOFF_JITTER_S` of random jitter. Budget:
``LLM_MAX_ATTEMPTS`` attempts (default 4) and ``LLM_RETRY_MAX_S`` seconds (default 60),
counted from the first attempt; no wait is started that would end past the budget (so
a whole call takes at most the budget plus one attempt, itself capped by
``LLM_TIMEOUT_S``).

When the budget runs out the last transient error is raised as
:class:`~shared.errors.LLMRetriesExhaustedError`, a *final* error: nothing above this
layer should retry the call again (that would multiply the attempts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from shared.errors import LLMError, LLMRetriesExhaustedError, RetryableLLMError
from shared.settings import get_settings

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429})
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 20.0
BACKOFF_JITTER_S = 0.5


def retry_after_s(headers: Mapping[str, str] | None, *,
                  now: datetime | None = None) -> float | None:
    """The wait (seconds, >= 0) a response asks for, or None.

    Reads ``retry-after-ms`` (milliseconds, sent by OpenAI) first, then ``Retry-After``
    as seconds or as an HTTP date (RFC 9110, section 10.2.3). Header names are
    case-insensitive; ``headers`` may be any mapping (``httpx`` headers included).
    """
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def status_error(vendor: str, status_code: int, *, reason: str | None = None,
                 headers: Mapping[str, str] | None = None) -> LLMError:
    """Map an HTTP error status to our error, retryable or final.

    Args:
        vendor: Provider name, for the message.
        status_code: The response's HTTP status.
        reason: A short machine reason (``rate_limit_error``); phrases are not used.
        headers: Response headers, read for ``Retry-After``.

    Returns:
        :class:`RetryableLLMError` for 408, 409, 429 and 5xx; :class:`LLMError` otherwise.
    """
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        phrase = "error"
    message = f"{vendor}: HTTP {status_code} {phrase}" + (f" ({reason})" if reason else "")
    if status_code in RETRYABLE_STATUS or status_code >= 500:
        return RetryableLLMError(message, status_code, retry_after_s(headers))
    if status_code in (401, 403):
        message += ": check the provider's API key"
    return LLMError(message)


def _wait(backoff: Callable[[RetryCallState], float]) -> Callable[[RetryCallState], float]:
    """Wait what the server asked for, else the exponential backoff."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = getattr(exc, "retry_after_s", None)
        return float(asked) if asked is not None else backoff(state)

    return wait


def call_with_retries(
    attempt: Callable[[], T],
    *,
    vendor: str,
    max_attempts: int | None = None,
    max_total_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``attempt`` until it succeeds, fails for good, or the budget is spent.

    Args:
        attempt: One try of the call; raises :class:`RetryableLLMError` for what may be
            retried and any other exception for what may not.
        vendor: Provider name, for logs and the final message.
        max_attempts: Attempts in all (default: ``LLM_MAX_ATTEMPTS``).
        max_total_s: Time budget in seconds (default: ``LLM_RETRY_MAX_S``).
        sleep: The sleeping function (tests may replace it).

    Raises:
        LLMRetriesExhaustedError: Every attempt failed transiently, or the next wait
            would pass the time budget.
        LLMError: A final failure, raised as soon as it happens.
    """
    settings = get_settings()
    attempts = max_attempts if max_attempts is not None else settings.llm_max_attempts
    budget_s = max_total_s if max_total_s is not None else settings.llm_retry_max_s
    started = time.monotonic()

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s call failed (%s); retry %d of %d in %.2f s", vendor, exc,
                    state.attempt_number, attempts - 1, state.upcoming_sleep)

    def give_up(state: RetryCallState) -> T:
        exc = state.outcome.exception() if state.outcome else None
        elapsed = time.monotonic() - started
        raise LLMRetriesExhaustedError(
            f"gave up after {state.attempt_number} attempt(s) in {elapsed:.1f} s: {exc}",
            getattr(exc, "status_code", None),
        ) from None

    retrying = Retrying(
        retry=retry_if_exception_type(RetryableLLMError),
        stop=stop_after_attempt(attempts) | stop_before_delay(budget_s),
        wait=_wait(wait_exponential_jitter(multiplier=BACKOFF_INITIAL_S, max=BACKOFF_MAX_S,
                                           jitter=BACKOFF_JITTER_S)),
        before_sleep=before_sleep,
        retry_error_callback=give_up,
        sleep=sleep,
        reraise=False,
    )
    return retrying(attempt)
