"""Fleet-wide LLM rate limits: requests and tokens per minute per (provider, model),
shared by every worker process through Redis.

Vendors limit each model to so many requests per minute (RPM) and tokens per minute
(TPM) per account, whichever of the account's processes sends them. So the budget is
kept in Redis, where every worker sees the same one, and checked by one Lua script, so
that no two workers can spend the same capacity.

Algorithm: the Generic Cell Rate Algorithm in its virtual-scheduling form (ATM Forum,
*Traffic Management Specification 4.0*, af-tm-0056.000, 1996; the same as ITU-T
I.371), as Brandur Leach explains it for API rate limits in "Rate Limiting, Cells, and
GCRA" (https://brandur.org/rate-limiting) and as ``redis-cell`` implements it. Each
(provider, model, dimension) has one Redis key holding the *theoretical arrival time*
(TAT) of the next unit, in microseconds of Redis server time. With emission interval
``T`` (60 s / limit: seconds per request, or per token; the limit less the headroom,
``LLM_RATE_LIMIT_HEADROOM``) and tolerance ``tau``:

* a call conforms when ``now >= TAT - tau``; it may go at once;
* it then moves the TAT on: ``TAT = max(TAT, now) + n * T`` (``n`` = 1 request, or the
  call's estimated tokens);
* otherwise it must wait ``TAT - tau - now`` seconds, and consumes nothing.

The requests dimension uses ``tau = (REQUEST_BURST - 1) * T``: with a burst of 1,
requests are spaced at least ``T`` apart (100 ms at 600 RPM), so no sliding window of
60 s ever holds more than the limit, however the vendor aligns its window. The tokens
dimension checks before it charges (``tau = 0``): a call may go once the tokens of the
calls before it have drained, whatever its own size, so a large call is delayed but
never refused for ever (and a window may hold one call's tokens beyond the limit).

Both dimensions are checked by the same script call and updated only if both conform,
so a call refused for tokens never spends a request, nor the reverse. The script reads
the clock with ``redis.call('TIME')``, so the clocks of worker hosts do not matter;
keys expire once their TAT has passed (an absent key and a past TAT mean the same).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from functools import lru_cache

import redis

from shared.errors import ConfigurationError, RateLimitedError, ServiceUnavailableError
from shared.llm.base import LLMRequest, input_chars
from shared.llm.rate_limit_rules import RateLimit
from shared.names import RATE_LIMIT_PREFIX
from shared.settings import get_settings
from shared.telemetry import instruments

log = logging.getLogger(__name__)

REQUEST_BURST = 1
"""Requests that may go back to back after an idle spell (1: evenly spaced)."""

CHARS_PER_TOKEN = 4
"""Characters of English text per token, OpenAI's rule of thumb for estimates ("one
token generally corresponds to ~4 characters of text", OpenAI's tokenizer guide and
rate-limit guide); the vendor simulator counts input tokens the same way."""

JITTER_FRACTION = 0.1
"""Random extra sleep after a refusal, as a fraction of the wait (so that waiters
refused together do not all retry at the same instant)."""

JITTER_MAX_S = 0.02
"""Cap of that extra sleep (seconds)."""

REDIS_TIMEOUT_S = 2.0
"""Connect and read timeout of the limiter's Redis client (seconds)."""

_DIMENSIONS = ("requests", "tokens")

# KEYS[1], KEYS[2]: TAT of the requests and of the tokens dimension (microseconds).
# ARGV[1], ARGV[2]: emission interval per request and tolerance (microseconds; 0 = no limit).
# ARGV[3], ARGV[4]: emission interval per token and tolerance (microseconds; 0 = no limit).
# ARGV[5]: tokens of this call.
# Returns {0, 0} when the call may go (both TATs moved on), else {wait in microseconds
# (>= 1), 1 for requests or 2 for tokens (the dimension that asks for the longest wait)}.
_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local amounts = {1, tonumber(ARGV[5])}
local wait, which, tats = 0, 0, {}
for i = 1, 2 do
  local interval = tonumber(ARGV[2 * i - 1])
  if interval > 0 then
    local tat = tonumber(redis.call('GET', KEYS[i]) or now)
    if tat < now then tat = now end
    tats[i] = tat
    local due = tat - tonumber(ARGV[2 * i]) - now
    if due > wait then wait, which = due, i end
  end
end
if wait > 0 then return {math.ceil(wait), which} end
for i = 1, 2 do
  if tats[i] then
    local tat = tats[i] + amounts[i] * tonumber(ARGV[2 * i - 1])
    redis.call('SET', KEYS[i], string.format('%.0f', tat),
               'PX', math.ceil((tat - now) / 1000) + 1000)
  end
end
return {0, 0}
"""


def estimate_tokens(request: LLMRequest) -> int:
    """Tokens to reserve for ``request`` before it is sent.

    The characters a provider sends (:func:`shared.llm.base.input_chars`: the system
    prompt and user message as :func:`shared.llm.base.render` builds them, which is
    what the providers send, plus the output schema) over :data:`CHARS_PER_TOKEN`,
    rounded up, plus ``max_output_tokens``: the answer's length is unknown beforehand,
    and this is what OpenAI itself counts against a TPM limit when a request arrives
    ("the maximum of max_tokens and the estimated number of tokens based on the
    character count of your request", OpenAI rate-limit guide), so a reservation
    never undercounts the vendor.

    Returns:
        Estimated tokens (input plus output).
    """
    return math.ceil(input_chars(request) / CHARS_PER_TOKEN) + request.max_output_tokens


class RateLimiter:
    """Fleet-wide RPM and TPM limits, enforced in Redis (thread- and process-safe).

    Args:
        client: Redis client (shared by the threads of a process).
        limits: The limits; an entry with model ``*`` covers each model of its
            provider that has no entry of its own, each with a budget of its own.
        prefix: Prefix of the Redis keys.
        request_burst: Requests that may go back to back after an idle spell.
        headroom: Fraction of each limit left unused (0.02 paces 600 rpm at 588 rpm);
            see ``Settings.llm_rate_limit_headroom``.
        sleep: Sleeping function (seconds), replaceable in tests.
        clock: Monotonic clock (seconds), replaceable in tests.
    """

    def __init__(
        self,
        client: redis.Redis,
        limits: Iterable[RateLimit],
        *,
        prefix: str = RATE_LIMIT_PREFIX,
        request_burst: int = REQUEST_BURST,
        headroom: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if request_burst < 1:
            raise ValueError(f"request_burst must be at least 1, not {request_burst}")
        if not 0.0 <= headroom < 1.0:
            raise ValueError(f"headroom must be in [0, 1), not {headroom}")
        self._client = client
        self._pace = 1.0 - headroom
        self._limits = {(limit.provider, limit.model): limit for limit in limits}
        self._prefix = prefix
        self._burst = request_burst
        self._sleep = sleep
        self._clock = clock
        self._script = client.register_script(_SCRIPT)

    def limit_for(self, provider: str, model: str) -> RateLimit | None:
        """The limit that applies to ``model`` of ``provider``: its own entry, else the
        provider's ``*`` entry, else None (no limit)."""
        return self._limits.get((provider, model)) or self._limits.get((provider, "*"))

    def keys(self, provider: str, model: str) -> tuple[str, str]:
        """Redis keys of the requests and the tokens dimension of (provider, model).

        Both carry the same hash tag, so one script may touch both on Redis Cluster.
        """
        tag = f"{{{provider}:{model}}}"
        return tuple(f"{self._prefix}{tag}:{dimension}" for dimension in _DIMENSIONS)

    def _reserve(self, provider: str, model: str, tokens: int) -> tuple[float, str | None]:
        if tokens < 0:
            raise ValueError(f"tokens must not be negative, not {tokens}")
        limit = self.limit_for(provider, model)
        if limit is None:
            return 0.0, None
        request_us = 60e6 / (limit.rpm * self._pace) if limit.rpm else 0.0
        token_us = 60e6 / (limit.tpm * self._pace) if limit.tpm else 0.0
        try:
            wait_us, which = self._script(
                keys=list(self.keys(provider, model)),
                args=[request_us, (self._burst - 1) * request_us, token_us, 0, tokens],
            )
        except redis.RedisError as exc:
            raise ServiceUnavailableError(
                f"rate limiter: Redis unavailable ({type(exc).__name__})") from exc
        if not wait_us:
            return 0.0, None
        return wait_us / 1e6, _DIMENSIONS[int(which) - 1]

    def reserve(self, provider: str, model: str, tokens: int) -> float:
        """Take one request and ``tokens`` tokens now, or say how long to wait.

        Args:
            provider: Provider name.
            model: Model name.
            tokens: Tokens the call is expected to use, input plus output (see
                :func:`estimate_tokens`).

        Returns:
            0.0 when the call may go now (it has then consumed one request and
            ``tokens`` tokens), or the seconds to wait before asking again (nothing
            consumed). 0.0 as well when no limit applies.

        Raises:
            ValueError: ``tokens`` is negative.
            ServiceUnavailableError: Redis cannot be reached.
        """
        return self._reserve(provider, model, tokens)[0]

    def acquire(self, provider: str, model: str, tokens: int, *, max_wait_s: float) -> None:
        """Wait until the call may go, then consume its request and tokens.

        Sleeps for what :meth:`reserve` asks, plus a little jitter, and asks again.

        Args:
            provider: Provider name.
            model: Model name.
            tokens: Estimated tokens of the call, input plus output.
            max_wait_s: Longest wait in all (seconds).

        Raises:
            RateLimitedError: Waiting for capacity would take longer than
                ``max_wait_s``; nothing was consumed, and ``retry_after_s`` says when
                capacity is expected (seconds from now).
            ValueError: ``tokens`` is negative.
            ServiceUnavailableError: Redis cannot be reached.
        """
        deadline = self._clock() + max_wait_s
        while True:
            wait_s, dimension = self._reserve(provider, model, tokens)
            if wait_s <= 0:
                return
            if self._clock() + wait_s > deadline:
                limit = self.limit_for(provider, model)
                per_minute = limit.rpm if dimension == "requests" else limit.tpm
                raise RateLimitedError(
                    f"{provider}:{model}: {dimension} per minute limit ({per_minute}) "
                    f"leaves no capacity within {max_wait_s:g} s (next in {wait_s:.2f} s)",
                    retry_after_s=wait_s,
                )
            self._sleep(wait_s + random.uniform(0.0, min(wait_s * JITTER_FRACTION,
                                                         JITTER_MAX_S)))


@lru_cache(maxsize=1)
def _limiter(redis_url: str | None, limits: tuple[RateLimit, ...],
             headroom: float) -> RateLimiter:
    if not redis_url:
        raise ConfigurationError("LLM_RATE_LIMITS needs REDIS_URL: limits are kept in Redis")
    client = redis.Redis.from_url(redis_url, socket_timeout=REDIS_TIMEOUT_S,
                                  socket_connect_timeout=REDIS_TIMEOUT_S)
    return RateLimiter(client, limits, headroom=headroom)


def get_rate_limiter() -> RateLimiter:
    """This process's limiter, built on first use from the settings (``REDIS_URL``,
    ``LLM_RATE_LIMITS``, ``LLM_RATE_LIMIT_HEADROOM``) and rebuilt when they change.

    Raises:
        ConfigurationError: Limits are configured but ``REDIS_URL`` is not.
    """
    settings = get_settings()
    return _limiter(settings.redis_url, settings.llm_rate_limits,
                    settings.llm_rate_limit_headroom)


def acquire_llm_capacity(provider: str, model: str, estimated_tokens: int) -> None:
    """Wait for fleet-wide capacity for one LLM call; call it right before the call.

    Does nothing when ``LLM_RATE_LIMITS`` sets no limit for (provider, model). Waits
    at most ``LLM_RATE_LIMIT_MAX_WAIT_S`` seconds. Should Redis be unreachable, the call
    goes ahead unthrottled (logged): the vendor still enforces its limit, and the retry
    layer honours its 429s.

    Args:
        provider: Provider name, as the call will use it.
        model: Model name, as the call will use it.
        estimated_tokens: Input plus output tokens the call may use: characters sent
            (system prompt, user message, schema) / 4 + ``max_output_tokens``;
            :func:`estimate_tokens` computes it from the ``LLMRequest``.

    Raises:
        RateLimitedError: Capacity would take longer than the allowed wait; put the step
            back on the queue for its ``retry_after_s`` seconds.
        ConfigurationError: Limits are configured but ``REDIS_URL`` is not.
    """
    settings = get_settings()
    if not settings.llm_rate_limits:
        return
    started = time.monotonic()
    try:
        get_rate_limiter().acquire(provider, model, estimated_tokens,
                                   max_wait_s=settings.llm_rate_limit_max_wait_s)
    except RateLimitedError:
        instruments.record_rate_limit_wait(provider, model, time.monotonic() - started,
                                           granted=False)
        raise
    except ServiceUnavailableError as exc:
        log.warning("%s; %s:%s call not throttled", exc, provider, model)
    else:
        instruments.record_rate_limit_wait(provider, model, time.monotonic() - started,
                                           granted=True)
