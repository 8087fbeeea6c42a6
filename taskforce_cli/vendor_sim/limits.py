"""Requests-per-minute and tokens-per-minute limits for the simulator.

A sliding window (60 s by default, shorter in tests) holds the requests accepted and
their tokens. A request that would pass either limit is refused with 429; its
``Retry-After`` is the time until enough of the window has expired for it to fit. The
headers follow OpenAI's ``x-ratelimit-*`` names (``limit``, ``remaining`` and ``reset``
for ``requests`` and ``tokens``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Entry:
    at: float
    tokens: int


class RateLimiter:
    """RPM and TPM limits over a sliding window (thread-safe).

    Args:
        rpm: Requests allowed per window; None for no limit.
        tpm: Tokens (input and output) allowed per window; None for no limit.
        window_s: Window length (seconds); 60 gives per-minute limits.
        clock: Monotonic clock (seconds), replaceable in tests.
    """

    def __init__(self, rpm: int | None = None, tpm: int | None = None,
                 window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.rpm, self.tpm, self.window_s = rpm, tpm, window_s
        self._clock = clock
        self._entries: deque[_Entry] = deque()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._entries and self._entries[0].at <= now - self.window_s:
            self._entries.popleft()

    def _wait_for(self, now: float, requests_over: int, tokens_over: int) -> float:
        """Seconds until ``requests_over`` requests and ``tokens_over`` tokens expire."""
        if requests_over <= 0 and tokens_over <= 0:
            return 0.0
        freed_tokens = 0
        for freed_requests, entry in enumerate(self._entries, start=1):
            freed_tokens += entry.tokens
            if freed_requests >= requests_over and freed_tokens >= tokens_over:
                return max(entry.at + self.window_s - now, 0.0)
        return self.window_s

    def admit(self, tokens: int) -> tuple[float | None, object]:
        """Admit a request of ``tokens`` input tokens, or refuse it.

        Returns:
            ``(None, ticket)`` when admitted (pass ``ticket`` to :meth:`add_tokens`), or
            ``(retry_after_s, None)`` when refused (seconds).
        """
        with self._lock:
            now = self._clock()
            self._expire(now)
            used_tokens = sum(e.tokens for e in self._entries)
            requests_over = (len(self._entries) + 1 - self.rpm) if self.rpm else 0
            tokens_over = (used_tokens + tokens - self.tpm) if self.tpm else 0
            if requests_over > 0 or tokens_over > 0:
                if self.tpm and tokens > self.tpm:
                    return self.window_s, None
                return self._wait_for(now, requests_over, tokens_over), None
            entry = _Entry(now, tokens)
            self._entries.append(entry)
            return None, entry

    def add_tokens(self, ticket: object, tokens: int) -> None:
        """Count ``tokens`` more (the output) against the admitted request ``ticket``."""
        if isinstance(ticket, _Entry):
            with self._lock:
                ticket.tokens += tokens

    def headers(self) -> dict[str, str]:
        """``x-ratelimit-*`` headers describing the window now (only configured limits)."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            oldest = self._entries[0].at + self.window_s - now if self._entries else 0.0
            reset = f"{max(oldest, 0.0):.3f}s"
            out: dict[str, str] = {}
            if self.rpm:
                left = max(self.rpm - len(self._entries), 0)
                out |= {"x-ratelimit-limit-requests": str(self.rpm),
                        "x-ratelimit-remaining-requests": str(left),
                        "x-ratelimit-reset-requests": reset}
            if self.tpm:
                used = sum(e.tokens for e in self._entries)
                out |= {"x-ratelimit-limit-tokens": str(self.tpm),
                        "x-ratelimit-remaining-tokens": str(max(self.tpm - used, 0)),
                        "x-ratelimit-reset-tokens": reset}
            return out

    def reset(self) -> None:
        """Forget every request in the window."""
        with self._lock:
            self._entries.clear()


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` value: whole seconds, rounded up (RFC 9110 allows integers only)."""
    return str(max(math.ceil(seconds), 0))
