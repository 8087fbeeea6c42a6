"""Quotas and ceilings per tenant, checked when a goal is submitted.

* Goals per minute: a Generic Cell Rate Algorithm in Redis (the same algorithm as
  :mod:`shared.llm.ratelimit`, one dimension): one key per tenant holds the theoretical
  arrival time (TAT) of the next goal, in microseconds of Redis server time; emission
  interval ``T = 60 s / limit`` and tolerance ``tau = (limit - 1) * T``, so a tenant idle
  for a minute may send ``limit`` goals at once, then one every ``T``. One Lua script
  reads and moves the TAT, so every gateway process shares one quota; a refused goal
  consumes nothing. Refusal: :class:`QuotaExceededError` (429) with ``Retry-After``.
* Goals in flight (not in a final state): counted in Postgres under the tenant row lock,
  in the transaction that inserts the goal (:func:`admit_in_flight`).
* USD per UTC day: reserved with every LLM call (:mod:`shared.persistence.budgets`).
* A goal's ``max_tokens`` / ``max_cost_usd`` are capped at the tenant's ceilings.
* Models: ``provider:model`` patterns (``*`` matches any model), globally
  (``ALLOWED_MODELS``) and per tenant; a model with no known price
  (:func:`shared.llm.pricing.price_for`) is refused until ``MODEL_PRICES`` prices it.

Each limit is the tenant's column when set (``taskforce keys tenant``), else the setting.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

import redis
from sqlalchemy.engine import Connection

from shared.errors import (
    ConfigurationError,
    ModelNotAllowedError,
    QuotaExceededError,
    RequestError,
    ServiceUnavailableError,
)
from shared.llm.pricing import price_for
from shared.llm.providers import KNOWN_PROVIDERS, get_provider
from shared.names import QUOTA_PREFIX
from shared.persistence import tenants as tenant_store
from shared.persistence.db import get_engine
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 2.0
"""Connect and read timeout of the quota's Redis client (seconds)."""

# KEYS[1]: TAT (microseconds). ARGV[1]: emission interval, ARGV[2]: tolerance (µs).
# Returns 0 when the goal may go (the TAT moved on), else the wait in microseconds.
_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval, tau = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tau - now
if wait > 0 then return math.ceil(wait) end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return 0
"""


@dataclass(frozen=True)
class TenantLimits:
    """A tenant's effective limits (its own columns, else the settings).

    Attributes:
        goals_per_minute: Goals it may submit per minute.
        max_goals_in_flight: Goals it may have not in a final state at once.
        daily_usd: USD its LLM calls may cost per UTC day.
        max_tokens_per_goal: Cap of a goal's token budget (None: no cap).
        max_cost_usd_per_goal: Cap of a goal's USD budget (None: no cap).
        allowed_models: ``provider:model`` patterns it may use.
    """

    goals_per_minute: int
    max_goals_in_flight: int
    daily_usd: float
    max_tokens_per_goal: int | None
    max_cost_usd_per_goal: float | None
    allowed_models: tuple[str, ...]


def parse_model_patterns(text: str, *, source: str = "ALLOWED_MODELS") -> tuple[str, ...]:
    """``sim:*,openai:gpt-4.1-mini`` → ``("sim:*", "openai:gpt-4.1-mini")``.

    Raises:
        ConfigurationError: An entry is not ``provider:model`` with a known provider.
    """
    patterns = tuple(p.strip() for p in text.split(",") if p.strip())
    for pattern in patterns:
        provider, _, model = pattern.partition(":")
        if provider not in KNOWN_PROVIDERS or not model:
            raise ConfigurationError(
                f"{source}: {pattern!r} is not provider:model (model may be '*'; providers: "
                f"{', '.join(KNOWN_PROVIDERS)})")
    return patterns


def default_model_patterns(settings: Settings) -> tuple[str, ...]:
    """``sim:*``, each provider's default model and the configured default model."""
    patterns = ["sim:*", f"{settings.default_provider}:{settings.default_model}"]
    patterns += [f"{name}:{get_provider(name).default_model}"
                 for name in KNOWN_PROVIDERS if name != "sim"]
    return tuple(dict.fromkeys(patterns))


def effective_limits(row: Mapping[str, Any] | None, settings: Settings) -> TenantLimits:
    """Combine a tenant's limit columns (None: unset) with the settings."""
    row = row or {}

    def pick(column: str, default: Any) -> Any:
        return row.get(column) if row.get(column) is not None else default

    allowed = row.get("allowed_models")
    usd_cap = pick("max_cost_usd_per_goal", settings.tenant_max_cost_usd_per_goal)
    return TenantLimits(
        goals_per_minute=int(pick("goals_per_minute", settings.tenant_goals_per_minute)),
        max_goals_in_flight=int(pick("max_goals_in_flight",
                                     settings.tenant_max_goals_in_flight)),
        daily_usd=float(pick("daily_usd", settings.tenant_daily_usd)),
        max_tokens_per_goal=pick("max_tokens_per_goal", settings.tenant_max_tokens_per_goal),
        max_cost_usd_per_goal=float(usd_cap) if usd_cap is not None else None,
        allowed_models=(parse_model_patterns(allowed, source="the tenant's allowed models")
                        if allowed else parse_model_patterns(settings.allowed_models)
                        or default_model_patterns(settings)),
    )


def limits_for(tenant_id: uuid.UUID) -> TenantLimits:
    """The tenant's effective limits, read from Postgres."""
    with get_engine().connect() as connection:
        row = tenant_store.limits_row(connection, tenant_id=tenant_id)
    return effective_limits(row, get_settings())


def check_model(provider: str, model: str, limits: TenantLimits) -> None:
    """Refuse a model outside the allowlist, or one with no known price.

    Raises:
        ModelNotAllowedError: Either (HTTP 422), naming the allowed models.
    """
    name = f"{provider}:{model}"
    if not any(fnmatchcase(name, pattern) for pattern in limits.allowed_models):
        raise ModelNotAllowedError(
            f"model {name!r} is not allowed (allowed: {', '.join(limits.allowed_models)})")
    if price_for(provider, model) is None:
        raise ModelNotAllowedError(
            f"model {name!r} has no known price, so its spending cannot be bounded; the "
            "operator can price it with MODEL_PRICES=provider:model=input/output (USD per "
            "million tokens)")


def capped(value: float | None, ceiling: float | None) -> float | None:
    """``value`` no larger than ``ceiling`` (None: unlimited on either side)."""
    if ceiling is None:
        return value
    return ceiling if value is None else min(value, ceiling)


@lru_cache(maxsize=1)
def _client(redis_url: str) -> tuple[redis.Redis, Any]:
    client = redis.Redis.from_url(redis_url, socket_timeout=REDIS_TIMEOUT_S,
                                  socket_connect_timeout=REDIS_TIMEOUT_S)
    return client, client.register_script(_SCRIPT)


def check_goal_rate(tenant_id: uuid.UUID, goals_per_minute: int) -> None:
    """Count one goal against the tenant's per-minute quota, or refuse it.

    Raises:
        QuotaExceededError: Over the quota (HTTP 429); ``retry_after_s`` is the wait in
            whole seconds, rounded up. Nothing was consumed.
        ServiceUnavailableError: Redis cannot be reached (HTTP 503).
        ConfigurationError: ``REDIS_URL`` is not set.
    """
    redis_url = get_settings().redis_url
    if not redis_url:
        raise ConfigurationError("the goals-per-minute quota needs REDIS_URL")
    interval_us = 60_000_000 / goals_per_minute
    client, script = _client(redis_url)
    try:
        wait_us = int(script(keys=[f"{QUOTA_PREFIX}{{{tenant_id}}}:goals"],
                             args=[f"{interval_us:.0f}",
                                   f"{(goals_per_minute - 1) * interval_us:.0f}"]))
    except redis.RedisError as exc:
        raise ServiceUnavailableError(f"message broker unavailable: {type(exc).__name__}")
    if wait_us > 0:
        retry_after = max(1, math.ceil(wait_us / 1_000_000))
        raise QuotaExceededError(
            f"quota exceeded: {goals_per_minute} goals per minute for this tenant; "
            f"retry after {retry_after} s", retry_after_s=retry_after)


def admit_in_flight(connection: Connection, *, tenant_id: uuid.UUID, limit: int,
                    idempotency_key: str | None = None) -> None:
    """Refuse a new goal while the tenant has ``limit`` goals in flight.

    Takes the tenant row lock for the rest of the caller's transaction, which must insert
    the goal (so check and insert are atomic). A repeat of an idempotent submission is
    let through: it creates nothing.

    Raises:
        QuotaExceededError: The tenant has ``limit`` goals in flight (HTTP 429, no
            ``Retry-After``: room is made by a goal ending).
    """
    in_flight = tenant_store.lock_and_count_in_flight(connection, tenant_id=tenant_id)
    if in_flight < limit:
        return
    if idempotency_key and tenant_store.has_idempotency_key(
            connection, tenant_id=tenant_id, key=idempotency_key):
        return
    raise QuotaExceededError(
        f"quota exceeded: {in_flight} goals in flight, at most {limit} for this tenant; "
        "submit again when one has ended (or cancel one)")


def set_tenant_limits(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Set some of tenant ``name``'s limits (a None value: back to the global setting).

    Args:
        name: The tenant's name.
        values: Columns of :data:`shared.persistence.tenants.LIMIT_COLUMNS` and values:
            counts at least 1, USD at least 0, ``allowed_models`` as ``provider:model``
            patterns, comma-separated.

    Returns:
        The tenant's limit columns after the change (None: the global setting).

    Raises:
        RequestError: A value is out of range, or no tenant has this name.
    """
    for column, value in values.items():
        if value is None:
            continue
        if column == "allowed_models":
            try:
                parse_model_patterns(value, source="allowed models")
            except ConfigurationError as exc:
                raise RequestError(str(exc)) from None
        elif column in ("daily_usd", "max_cost_usd_per_goal"):
            if not (math.isfinite(value) and 0 <= value < 1_000_000):
                raise RequestError(f"{column}: USD from 0 to below 1,000,000")
        elif not 1 <= value < 2**62:
            raise RequestError(f"{column}: a whole number of at least 1")
    with get_engine().begin() as connection:
        row = tenant_store.set_limits(connection, name=name, values=dict(values))
    if row is None:
        raise RequestError(f"no tenant named {name!r}")
    return row
