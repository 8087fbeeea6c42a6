"""Fleet-wide LLM rate limits (``shared.llm.ratelimit``) against the real Redis of the
``services`` fixture: the GCRA script's rate and burst, both dimensions checked as one,
several processes sharing one budget, ``acquire``'s deadline, and the settings format.

Each test uses keys under a prefix of its own, so tests never share a budget.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import multiprocessing
import pickle
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis
from pydantic import ValidationError

from shared.errors import RateLimitedError, RetryableLLMError
from shared.llm import ratelimit
from shared.llm.base import LLMRequest
from shared.llm.rate_limit_rules import RateLimit, parse_rate_limits
from shared.llm.ratelimit import RateLimiter, acquire_llm_capacity, estimate_tokens
from shared.settings import Settings, get_settings, overridden_settings
from tests.support.waiting import wait_until

PROVIDER, MODEL = "openai", "gpt-test"
INTERVAL_S = 0.1  # 600 requests per minute
ROUNDING_S = 2e-6  # the script keeps whole microseconds (TAT rounded, waits rounded up)


def redis_now_s(client: redis.Redis) -> float:
    """Redis server time (seconds), the clock the script uses."""
    seconds, micros = client.time()
    return seconds + micros / 1e6


@pytest.fixture()
def client(services: dict[str, str]) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(services["REDIS_URL"])
    yield connection
    connection.close()


@pytest.fixture()
def make_limiter(client: redis.Redis) -> Callable[..., RateLimiter]:
    """``make_limiter(rpm=..., tpm=..., **kwargs)``: a limiter for (PROVIDER, MODEL)
    with keys under a fresh prefix."""
    prefix = f"taskforce:test-ratelimit:{uuid.uuid4().hex}:"

    def make(*, rpm: int | None = None, tpm: int | None = None, **kwargs: object) -> RateLimiter:
        limit = RateLimit(provider=PROVIDER, model=MODEL, rpm=rpm, tpm=tpm)
        return RateLimiter(client, [limit], prefix=prefix, **kwargs)

    return make


def redis_now_us(client: redis.Redis) -> int:
    """Redis server time in microseconds (the unit of the limiter's keys)."""
    seconds, micros = client.time()
    return seconds * 1_000_000 + micros


@dataclass
class Hammered:
    """What :func:`hammer` saw.

    Attributes:
        allowed: Calls that went.
        started: Redis time before the first call (seconds).
        ended: Redis time after the last call (seconds).
        calls: (sent, answered) of every call, in ``time.monotonic()`` seconds (one
            clock for every process of the host).
    """

    allowed: int
    started: float
    ended: float
    calls: list[tuple[float, float]]


def hammer(limiter: RateLimiter, client: redis.Redis, seconds: float) -> Hammered:
    """Call ``reserve`` as fast as possible for ``seconds``."""
    started = redis_now_s(client)
    deadline = time.monotonic() + seconds
    allowed, calls = 0, []
    while (sent := time.monotonic()) < deadline:
        allowed += limiter.reserve(PROVIDER, MODEL, 0) == 0.0
        calls.append((sent, time.monotonic()))
    return Hammered(allowed, started, redis_now_s(client), calls)


def most_allowed(burst: int, interval_s: float, started: float, ended: float) -> int:
    """GCRA's ceiling: ``burst`` at once, then one per interval (+1 for the script's
    rounding to whole microseconds), whatever the callers' timing."""
    return burst + int((ended - started) / interval_s) + 1


def fewest_allowed(calls: list[tuple[float, float]], interval_s: float) -> float:
    """The least GCRA (burst >= 1) can have let through given when the calls were made.

    Capacity is only lost while nobody asks: a slot that comes due inside a gap between
    two calls is taken at the end of that gap, so each allowed call loses at most the gap
    before it. Hence ``allowed * interval + (sum of the ``allowed`` largest gaps) >=
    (last call - first call)``; this returns the smallest ``allowed`` that satisfies it.
    A gap is bounded from above with what is certain: a call ran between its send and
    its answer, and after every call answered before it was sent. Load on the machine
    makes the gaps, and so this bound, looser, never wrong.
    """
    by_answer = sorted(calls, key=lambda call: call[1])
    answers = [answered for _, answered in by_answer]
    latest_sent, best = [], -math.inf
    for sent, _ in by_answer:
        best = max(best, sent)
        latest_sent.append(best)
    first_sent = min(sent for sent, _ in calls)
    gaps = []
    for sent, answered in calls:
        before = bisect.bisect_right(answers, sent)  # calls answered before this was sent
        gaps.append(answered - (latest_sent[before - 1] if before else first_sent))
    gaps.sort(reverse=True)
    span = max(sent for sent, _ in calls) - min(answers)
    lost, allowed = 0.0, 0
    while allowed * interval_s + lost < span and allowed < len(gaps):
        lost += gaps[allowed]
        allowed += 1
    return allowed


@pytest.mark.parametrize(("burst", "headroom", "seconds"),
                         [(1, 0.0, 2.0), (5, 0.0, 1.0), (1, 0.5, 1.0)])
def test_allows_the_burst_then_one_request_per_interval(
    make_limiter: Callable[..., RateLimiter], client: redis.Redis, burst: int,
    headroom: float, seconds: float,
) -> None:
    limiter = make_limiter(rpm=600, request_burst=burst, headroom=headroom)
    interval_s = INTERVAL_S / (1 - headroom)
    started = redis_now_s(client)
    # `burst` requests at once (however slowly they are made: capacity only grows)...
    assert [limiter.reserve(PROVIDER, MODEL, 0) for _ in range(burst)] == [0.0] * burst
    # ...then one each time the TAT comes round: never more, and no fewer than the
    # timing of the calls allows.
    seen = hammer(limiter, client, seconds)
    ceiling = most_allowed(burst, interval_s, started, seen.ended)
    assert burst + seen.allowed <= ceiling, (burst + seen.allowed, ceiling)
    # The burst taken just before may hold back up to `burst` slots of the hammer's
    # span, and the script rounds to whole microseconds: hence `burst + 1` less.
    floor = fewest_allowed(seen.calls, interval_s) - burst - 1
    assert seen.allowed >= floor, (seen.allowed, floor)


def test_refusal_reports_the_wait_until_the_next_slot(
    make_limiter: Callable[..., RateLimiter], client: redis.Redis,
) -> None:
    limiter = make_limiter(rpm=60)  # one request per second
    interval_s = 1.0
    before = time.monotonic()
    assert limiter.reserve(PROVIDER, MODEL, 0) == 0.0
    wait = limiter.reserve(PROVIDER, MODEL, 0)
    # The slot is one interval after the first call, less the time between the calls.
    assert interval_s - (time.monotonic() - before) <= wait <= interval_s + ROUNDING_S
    time.sleep(wait)  # waiting what it said is enough (sleeping longer only more so)
    assert limiter.reserve(PROVIDER, MODEL, 0) == 0.0
    requests_key, _ = limiter.keys(PROVIDER, MODEL)
    assert 0 < client.pttl(requests_key) <= 1_000 + interval_s * 1_000  # expires once past


def wait_until_drained(client: redis.Redis, key: str) -> None:
    """Wait until the TAT in ``key`` has passed on Redis's clock (the script's)."""
    wait_until(lambda: redis_now_us(client) >= int(client.get(key) or 0), interval=0.005,
               timeout=10, message=f"the TAT of {key} passed")


def test_a_call_refused_for_tokens_spends_no_request(
    make_limiter: Callable[..., RateLimiter], client: redis.Redis,
) -> None:
    limiter = make_limiter(rpm=600, tpm=60_000)  # 1 request per 100 ms, 1 token per ms
    requests_key, tokens_key = limiter.keys(PROVIDER, MODEL)
    before = time.monotonic()
    assert limiter.reserve(PROVIDER, MODEL, 3_000) == 0.0  # the tokens of the next 3 s
    wait_until_drained(client, requests_key)  # a request would be allowed again
    state = client.mget(requests_key, tokens_key)
    wait, dimension = limiter._reserve(PROVIDER, MODEL, 10)
    assert dimension == "tokens"
    assert 3.0 - (time.monotonic() - before) <= wait <= 3.0 - INTERVAL_S + ROUNDING_S
    assert client.mget(requests_key, tokens_key) == state


def test_a_call_refused_for_requests_spends_no_tokens(
    make_limiter: Callable[..., RateLimiter], client: redis.Redis,
) -> None:
    limiter = make_limiter(rpm=60, tpm=6_000_000)  # 1 request per s, 1 token per 10 us
    requests_key, tokens_key = limiter.keys(PROVIDER, MODEL)
    before = time.monotonic()
    assert limiter.reserve(PROVIDER, MODEL, 10) == 0.0
    wait_until_drained(client, tokens_key)  # those 10 tokens have drained
    state = client.mget(requests_key, tokens_key)
    wait, dimension = limiter._reserve(PROVIDER, MODEL, 10)
    assert dimension == "requests"
    assert 1.0 - (time.monotonic() - before) <= wait <= 1.0 + ROUNDING_S
    assert client.mget(requests_key, tokens_key) == state


def test_a_call_larger_than_a_second_of_tokens_waits_but_is_never_refused_for_ever(
    make_limiter: Callable[..., RateLimiter],
) -> None:
    limiter = make_limiter(tpm=600)  # 10 tokens per second
    assert limiter.reserve(PROVIDER, MODEL, 5_000) == 0.0
    assert limiter.reserve(PROVIDER, MODEL, 1) == pytest.approx(500.0, abs=1.0)


def _hammer_in_process(redis_url: str, prefix: str, barrier: object, seconds: float,
                       results: object) -> None:
    """Child process body: one limiter of its own on the shared keys."""
    connection = redis.Redis.from_url(redis_url)
    limiter = RateLimiter(connection, [RateLimit(provider=PROVIDER, model=MODEL, rpm=600)],
                          prefix=prefix)
    barrier.wait()
    seen = hammer(limiter, connection, seconds)
    results.put((seen.allowed, seen.started, seen.ended, seen.calls))


def test_processes_sharing_a_limit_never_exceed_it_together(
    services: dict[str, str], client: redis.Redis,
) -> None:
    processes, seconds = 4, 2.0
    prefix = f"taskforce:test-ratelimit:{uuid.uuid4().hex}:"
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    children = [
        context.Process(target=_hammer_in_process,
                        args=(services["REDIS_URL"], prefix, barrier, seconds, results))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    outcomes = [Hammered(*results.get(timeout=60)) for _ in children]
    for child in children:
        child.join(timeout=10)
        assert child.exitcode == 0
    assert all(seen.calls for seen in outcomes)
    allowed = sum(seen.allowed for seen in outcomes)
    # Never more than one budget together (burst 1, then one per 100 ms)...
    ceiling = most_allowed(1, INTERVAL_S, min(seen.started for seen in outcomes),
                           max(seen.ended for seen in outcomes))
    assert allowed <= ceiling, (allowed, ceiling)
    # ...and the budget was used, as far as the processes' timing let it be.
    floor = fewest_allowed([call for seen in outcomes for call in seen.calls], INTERVAL_S) - 1
    assert allowed >= floor, (allowed, floor)


def test_acquire_waits_for_capacity_then_raises_past_max_wait(
    make_limiter: Callable[..., RateLimiter],
) -> None:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    limiter = make_limiter(rpm=60, sleep=sleep)  # one request per second
    interval_s = 1.0
    before = time.monotonic()
    limiter.acquire(PROVIDER, MODEL, 0, max_wait_s=0)
    limiter.acquire(PROVIDER, MODEL, 0, max_wait_s=2.0)  # waits for the next slot
    # It slept once, for what the script asked plus at most the jitter's cap, and the
    # slot it got is a whole interval after the first one.
    assert len(sleeps) == 1 and 0.0 < sleeps[0] <= interval_s + ratelimit.JITTER_MAX_S
    assert time.monotonic() - before >= interval_s
    with pytest.raises(RateLimitedError) as caught:
        limiter.acquire(PROVIDER, MODEL, 0, max_wait_s=0.01)
    assert len(sleeps) == 1  # refused at once, without sleeping
    assert 0.0 < caught.value.retry_after_s <= interval_s + ROUNDING_S
    assert "requests per minute limit (60)" in str(caught.value)
    time.sleep(caught.value.retry_after_s)  # the refusal consumed nothing
    assert limiter.reserve(PROVIDER, MODEL, 0) == 0.0


def test_rate_limited_error_is_retryable_and_survives_pickling() -> None:
    error = RateLimitedError("openai:gpt-4o: requests per minute limit", retry_after_s=1.5)
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, RetryableLLMError)
    assert (str(copy), copy.retry_after_s, copy.status_code) == (str(error), 1.5, None)
    assert RateLimitedError("plain message").retry_after_s is None


def test_wildcard_gives_each_model_its_own_budget(client: redis.Redis) -> None:
    limiter = RateLimiter(client, parse_rate_limits("openai:*=60rpm,openai:big=6rpm"),
                          prefix=f"taskforce:test-ratelimit:{uuid.uuid4().hex}:")
    assert limiter.limit_for("openai", "big").rpm == 6
    assert limiter.limit_for("openai", "other").rpm == 60
    assert limiter.limit_for("anthropic", "other") is None
    assert limiter.reserve("openai", "a", 0) == 0.0
    assert limiter.reserve("openai", "b", 0) == 0.0  # not held up by model a
    assert limiter.reserve("openai", "a", 0) > 0.0
    assert all(limiter.reserve("anthropic", "x", 0) == 0.0 for _ in range(5))


@contextlib.contextmanager
def socket_on_free_port() -> Iterator[int]:
    """A loopback port bound but not listening: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture()
def configured(services: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Settings with a 60 rpm limit on a model of its own and no wait allowed."""
    model = f"model-{uuid.uuid4().hex}"
    monkeypatch.setenv("LLM_RATE_LIMITS", f"openai:{model}=60rpm")
    monkeypatch.setenv("LLM_RATE_LIMIT_MAX_WAIT_S", "0")
    get_settings.cache_clear()
    yield model
    monkeypatch.undo()
    get_settings.cache_clear()


def test_acquire_llm_capacity_applies_the_configured_limits(configured: str) -> None:
    acquire_llm_capacity("openai", configured, 100)
    with pytest.raises(RateLimitedError):
        acquire_llm_capacity("openai", configured, 100)
    for _ in range(3):
        acquire_llm_capacity("anthropic", configured, 100)  # no limit: no-op


def test_acquire_llm_capacity_lets_calls_through_when_redis_is_down(
    configured: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    with socket_on_free_port() as port:
        with overridden_settings(redis_url=f"redis://127.0.0.1:{port}/0"):
            for _ in range(2):
                acquire_llm_capacity("openai", configured, 100)
    assert "Redis unavailable" in caplog.text


def test_estimate_is_sent_chars_over_four_plus_max_output() -> None:
    request = LLMRequest(purpose="plan", model="m", system="s" * 40, instruction="p" * 401,
                         data={}, output_schema={}, max_output_tokens=1_000)
    # 40 system + "<data>{}</data>" (15) + "\n\n" (2) + 401 instruction + "{}" (2) = 460
    assert estimate_tokens(request) == 115 + 1_000


def test_get_rate_limiter_is_cached_per_settings(configured: str) -> None:
    assert ratelimit.get_rate_limiter() is ratelimit.get_rate_limiter()


@pytest.mark.parametrize(("text", "expected"), [
    ("", ()),
    ("openai:gpt-4o-mini=600rpm/200000tpm, anthropic:*=50rpm", (
        RateLimit(provider="openai", model="gpt-4o-mini", rpm=600, tpm=200_000),
        RateLimit(provider="anthropic", model="*", rpm=50),
    )),
    (" openai-compatible:llama3:8b = 30 TPM / 5RPM ,", (
        RateLimit(provider="openai-compatible", model="llama3:8b", rpm=5, tpm=30),
    )),
])
def test_parse_rate_limits(text: str, expected: tuple[RateLimit, ...]) -> None:
    assert parse_rate_limits(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("openai=600rpm", "PROVIDER:MODEL=LIMIT"),
    ("openai:gpt-4o", "PROVIDER:MODEL=LIMIT"),
    (":gpt-4o=1rpm", "PROVIDER:MODEL=LIMIT"),
    ("openai:gpt-4o=", "is not <integer>rpm"),
    ("openai:gpt-4o=600", "is not <integer>rpm"),
    ("openai:gpt-4o=600rps", "is not <integer>rpm"),
    ("openai:gpt-4o=-5rpm", "is not <integer>rpm"),
    ("openai:gpt-4o=1.5rpm", "is not <integer>rpm"),
    ("openai:gpt-4o=0rpm", "must be positive"),
    ("openai:gpt-4o=1rpm/2rpm", "sets rpm twice"),
    ("openai:gpt-4o=1rpm,openai:gpt-4o=2tpm", "given twice"),
])
def test_parse_rate_limits_refuses_malformed_entries(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rate_limits(text)


def test_settings_read_the_compact_form_and_default_to_no_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LLM_RATE_LIMITS", raising=False)
    assert Settings().llm_rate_limits == ()
    assert Settings().llm_rate_limit_max_wait_s == 5.0
    monkeypatch.setenv("LLM_RATE_LIMITS", "anthropic:*=50rpm")
    assert Settings().llm_rate_limits == (RateLimit(provider="anthropic", model="*", rpm=50),)
    monkeypatch.setenv("LLM_RATE_LIMITS", "anthropic:*=50")
    with pytest.raises(ValidationError, match="is not <integer>rpm"):
        Settings()
