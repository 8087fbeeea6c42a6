"""What the vendor providers share: keys, cached clients, answer parsing, SDK errors.

Each vendor module (``openai``, ``anthropic``, ``openai_compatible``) owns its wire
format; this module owns the rest:

* keys come from the settings (``SecretStr``) and are read only to build a client;
  they are never logged nor put in an error message;
* clients are created lazily, once per process and per (vendor, base URL, key), with
  the SDK's own retries off (``max_retries=0``): :mod:`shared.llm.retry` is the only
  retry layer. The cache is emptied in a forked child, so a prefork pool never shares a
  parent's connections;
* SDK exceptions are mapped to ours with the HTTP status and a short machine reason
  only, because SDK messages may echo the request or response body;
* answers are parsed strictly: anything but a JSON object is a
  :class:`~shared.errors.MalformedOutputError` carrying the raw text.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

from pydantic import SecretStr

from shared.errors import ConfigurationError, LLMError, MalformedOutputError, RetryableLLMError
from shared.llm.base import LLMRequest, LLMResult, Usage
from shared.llm.retry import call_with_retries, status_error
from shared.settings import Settings, get_settings

_CLIENTS: dict[tuple[str, str, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()
_MACHINE_REASON = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_FENCE = re.compile(r"^```(?:json)?\s*\n(.*)\n```$", re.DOTALL)


def _forget_clients() -> None:
    _CLIENTS.clear()


os.register_at_fork(after_in_child=_forget_clients)


def read_key(secret: SecretStr | None, variable: str, *, required: bool = True) -> str | None:
    """The key's value, or None when it is unset and not ``required``.

    Raises:
        ConfigurationError: ``required`` and the key is unset (names ``variable`` only).
    """
    value = secret.get_secret_value().strip() if secret is not None else ""
    if value:
        return value
    if required:
        raise ConfigurationError(f"{variable} is not set (needed by this LLM provider)")
    return None


def cached_client(vendor: str, base_url: str, key: str, factory: Callable[[], Any]) -> Any:
    """The process's client for (vendor, base URL, key), made by ``factory`` on first use.

    The cache is keyed by a SHA-256 fingerprint of the key, not the key itself.
    """
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:16]
    cache_key = (vendor, base_url, fingerprint)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(cache_key)
        if client is None:
            client = _CLIENTS[cache_key] = factory()
        return client


def _reason(body: object) -> str | None:
    """A short machine reason from an error body (``rate_limit_error``), if it has one."""
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        for field in ("type", "code"):
            value = inner.get(field)
            if isinstance(value, str) and _MACHINE_REASON.match(value):
                return value
    return None


def sdk_error(exc: Exception, sdk: ModuleType, *, vendor: str, timeout_s: float) -> LLMError:
    """Map an exception of the ``openai`` or ``anthropic`` SDK to ours.

    Only the HTTP status, a machine reason and ``Retry-After`` are kept; the SDK's
    message (which may quote request or response bodies) is dropped.
    """
    if isinstance(exc, sdk.APITimeoutError):
        return RetryableLLMError(f"{vendor}: no response within {timeout_s:g} s")
    if isinstance(exc, sdk.APIConnectionError):
        return RetryableLLMError(f"{vendor}: connection failed")
    if isinstance(exc, sdk.APIStatusError):
        return status_error(vendor, exc.status_code, reason=_reason(exc.body),
                            headers=exc.response.headers)
    if isinstance(exc, sdk.APIResponseValidationError):
        return LLMError(f"{vendor}: the response does not fit the API's format")
    return LLMError(f"{vendor}: {type(exc).__name__}")


def parse_answer(text: str | None, *, vendor: str, usage: Usage,
                 truncated: bool = False, simulated: bool = False) -> dict[str, Any]:
    """The answer's JSON object.

    A single surrounding Markdown fence (```json ... ```) is tolerated, as some
    self-hosted servers add one in ``json_object`` mode.

    Raises:
        MalformedOutputError: The answer was cut off at the token limit, is not JSON, or
            is JSON but not an object (carries the raw text and the billed tokens).
    """
    raw = text or ""

    def malformed(why: str) -> MalformedOutputError:
        return MalformedOutputError(f"{vendor}: {why}", raw, usage.input_tokens,
                                    usage.output_tokens, simulated=simulated)

    if truncated:
        raise malformed("answer cut off at the output token limit")
    body = raw.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise malformed(f"answer is not JSON ({exc.msg} at line {exc.lineno} "
                        f"column {exc.colno})") from None
    if not isinstance(data, dict):
        raise malformed(f"answer is JSON but not an object ({type(data).__name__})")
    return data


class Answer(NamedTuple):
    """One successful attempt: the parsed JSON, its usage, and whether it was simulated."""

    data: dict[str, Any]
    usage: Usage
    simulated: bool


class VendorProvider:
    """Base of the vendor providers: retries and timing around one ``_attempt``.

    Subclasses set ``name`` and ``default_model`` and implement :meth:`_attempt`.
    """

    name: str = ""
    default_model: str = ""

    def generate(self, request: LLMRequest) -> LLMResult:
        """Run ``request``, retrying transient failures (see :mod:`shared.llm.retry`).

        Returns:
            The parsed answer, the usage of the successful attempt (tokens) and the
            wall time of the whole call, waits between attempts included (seconds).

        Raises:
            ConfigurationError: A key or base URL the provider needs is not set.
            LLMRetriesExhaustedError: Transient failures outlasted the retry budget.
            MalformedOutputError: The answer is not a JSON object.
            LLMError: Any other final failure (400, 401, 403, 404, 422, refusal).
        """
        settings = get_settings()
        started = time.monotonic()
        answer = call_with_retries(lambda: self._attempt(request, settings), vendor=self.name)
        return LLMResult(data=answer.data, usage=answer.usage,
                         latency_s=time.monotonic() - started, simulated=answer.simulated)

    def _attempt(self, request: LLMRequest, settings: Settings) -> Answer:
        """One HTTP request; raises RetryableLLMError or a final LLMError on failure."""
        raise NotImplementedError
