"""Taskforce settings: one pydantic-settings class, read through a cached accessor.

Every process (gateway, worker, beat, CLI) reads its configuration here. Values come
from the environment (prefix-free names such as ``DATABASE_URL``, ``REDIS_URL``) or a
``.env`` file, with this process's explicit overrides on top (:func:`override_settings`:
the CLI and tests pointing themselves at servers they started). Nothing in this module
opens a connection, and nothing reads the settings at import time: every process reads
them when it first needs them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from shared.llm.rate_limit_rules import RateLimit, parse_rate_limits
from shared.settings_bounds import BoundsSettings
from shared.settings_console import ConsoleSettings
from shared.settings_deploy import DeploySettings
from shared.settings_memory import MemorySettings
from shared.settings_react import ReactSettings
from shared.settings_sessions import SessionSettings
from shared.settings_telemetry import TelemetrySettings


class Settings(BoundsSettings, ConsoleSettings, DeploySettings, MemorySettings,
               ReactSettings, SessionSettings, TelemetrySettings):
    """Configuration for every Taskforce process.

    Attributes:
        database_url: SQLAlchemy URL of the Postgres system of record
            (``postgresql+psycopg://...``). ``None`` means "start the embedded default"
            in the CLI's ``run`` and ``batch`` commands; servers require it.
        redis_url: Celery broker URL (``redis://host:port/db``). ``None``: as above.
        data_dir: Where embedded servers keep their data, worker logs and batch
            results (a path, relative to the current directory by default).
        default_provider: LLM provider used when a goal names none (``sim`` needs no key).
        default_model: Model name used when a goal names none.
        openai_api_key: Key for the ``openai`` provider (``OPENAI_API_KEY``). Secret:
            never logged nor put in error messages.
        anthropic_api_key: Key for the ``anthropic`` provider (``ANTHROPIC_API_KEY``).
        openai_compatible_api_key: Key for the ``openai-compatible`` provider
            (``OPENAI_COMPATIBLE_API_KEY``); optional, as self-hosted servers (vLLM,
            Ollama, LM Studio) often run without one.
        openai_base_url: Base URL of the OpenAI API (``OPENAI_BASE_URL``); None means
            ``https://api.openai.com/v1``. Point it at ``taskforce sim-llm`` to simulate.
        anthropic_base_url: Base URL of the Anthropic API (``ANTHROPIC_BASE_URL``); None
            means ``https://api.anthropic.com``.
        openai_compatible_base_url: Base URL of an OpenAI-compatible server
            (``OPENAI_COMPATIBLE_BASE_URL``, e.g. ``http://127.0.0.1:11434/v1`` for
            Ollama); required by the ``openai-compatible`` provider.
        openai_compatible_model: Model the ``openai-compatible`` provider uses when a goal
            names none (the name the server serves it under).
        llm_timeout_s: Timeout of one HTTP attempt to an LLM API (seconds).
        llm_max_attempts: Attempts per LLM call, the first included, before a transient
            failure (408, 409, 429, 5xx, timeout, lost connection) becomes final.
        llm_retry_max_s: Budget of one LLM call across its attempts and waits (seconds);
            no retry starts that would end its wait past it.
        llm_rate_limits: Fleet-wide limits per (provider, model), shared by every worker
            through Redis (``shared.llm.ratelimit``). In the environment, the compact
            form ``LLM_RATE_LIMITS=openai:gpt-4o-mini=600rpm/200000tpm,anthropic:*=50rpm``
            (see :func:`parse_rate_limits`); ``*`` stands for any model without an
            entry of its own. Empty (the default): no limit.
        llm_rate_limit_max_wait_s: Longest a worker thread waits for rate-limit capacity
            before an LLM call (seconds); past it the call raises ``RateLimitedError``
            and the step goes back on the queue instead.
        llm_rate_limit_headroom: Fraction of each limit left unused (0.02: a 600 rpm
            limit is paced at 588 rpm). The vendor counts requests when they arrive,
            not when Redis admitted them; at a pace of exactly the limit, any variation
            in that delay (tens of milliseconds on a loaded worker) lets the vendor's
            window see one request too many, and its 429 retry then displaces
            another. 2 % of a 60 s window is 1.2 s of slack.
        sim_plan_latency_s: Mean simulated latency of a planning call (seconds). The
            default follows the LLMCompiler paper (Kim et al., ICML 2024, Table 1 and
            section 5), about 1.9 s to plan.
        sim_synthesize_latency_s: Mean simulated latency of the final answer (seconds),
            about 1.6 s in the same paper.
        sim_validate_latency_s: Mean simulated latency of a validation call (seconds).
        sim_latency_jitter: Relative spread of simulated latencies (0.1 = +/-10 %),
            derived deterministically from the request, so runs are repeatable.
        sim_latency_scale: Multiplier on every simulated latency (0 disables sleeping).
        sim_tool_latency_s: Simulated network latency added to remote tools (search) in
            goals on the ``sim`` provider (seconds). 0.5 s is an assumed round trip of a
            remote search API, not a measured figure; the step's output reports it.
        goal_max_tokens: Default token budget of a goal (input plus output tokens over
            all its LLM calls); a request's ``max_tokens`` overrides it.
        goal_max_cost_usd: Default USD budget of a goal; a request's ``max_cost_usd``
            overrides it.
        max_replans: How many times a goal is replanned after a step fails or a
            validation rejects an output, before it fails with the last error.
        max_plan_steps: Cap on steps in one plan.
        max_fan_out: Cap on the fan-out width of a plan: the largest number of steps at
            one depth of the DAG (steps with no dependencies are at depth 0).
        step_lease_s: How long a claimed step's lease lasts (seconds). A running step
            renews it every third of this; a worker that dies stops renewing, and once
            the lease expires the reconciler hands the step to another worker.
        step_max_attempts: Claims allowed per step; past it the step fails with
            ``worker_lost``.
        tool_step_time_limit_s: Hard time limit of a tool step (seconds); the soft limit
            is 90 % of it. Enforced by Celery under the prefork pool; under the threads
            pool the step stops renewing its lease at the limit, so it is retried.
        llm_step_time_limit_s: Hard time limit of a validate or synthesize step (s).
        planning_stale_s: A goal ``planning`` for longer than this (seconds) is planned
            again (its planner is presumed dead).
        reconcile_interval_s: How often beat runs the reconciler (seconds).
        reconcile_stale_s: A step ``queued`` or a goal ``pending`` for longer than this
            (seconds) gets its message published again (it may have been lost).
        db_retry_max_s: How long a worker retries a unit of database work through
            connection failures before giving up (seconds).
        broker_visibility_timeout_s: Override of the Redis visibility timeout (seconds).
            Leave unset: the default is derived from the step time limits and lease
            (see ``visibility_timeout_s``). The fault suite sets it below a step's
            duration to show that a redelivery while the step runs does no harm.
        redis_require_noeviction: Refuse to start a worker when Redis's
            ``maxmemory-policy`` is not ``noeviction`` (an evicting Redis may drop
            queued messages).
        worker_concurrency: Steps in flight per worker process: threads, or greenlets
            under ``gevent`` (e.g. 1,000); also the most broker connections a worker
            opens for acknowledgements.
        worker_pool: Celery pool for worker processes (``threads`` or ``gevent``; see
            "Choosing a pool" in docs/architecture.md).
        db_pool_size: SQLAlchemy connection-pool size per process; as many again may
            be opened under bursts, never more, however many threads or greenlets
            share it (each holds one only briefly; the others wait for one).
        result_poll_interval_s: How often CLI clients poll a goal's status (seconds).
        gateway_host: Interface the HTTP gateway binds.
        gateway_port: Port the HTTP gateway binds.
        auth_enabled: Require ``Authorization: Bearer <API key>`` on the gateway's
            ``/v1`` routes (keys from ``taskforce keys create``). Off: every request acts
            as tenant ``default`` with all scopes, and ``taskforce gateway`` refuses to
            bind anything but a loopback address.
        memory_retention_days: Age after which beat removes finished goals' step
            results and episodes (days).
        tool_modules: Extra modules whose ``TOOLS`` list joins the built-in tools
            (comma-separated in the environment: ``TOOL_MODULES=my.tools,other.tools``).
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path(".taskforce")

    default_provider: str = "sim"
    default_model: str = "sim-planner-1"
    # LLM providers
    openai_api_key: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    openai_compatible_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_base_url: str | None = None
    openai_compatible_base_url: str | None = None
    openai_compatible_model: str = "local-model"
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_max_attempts: int = Field(default=4, ge=1)
    llm_retry_max_s: float = Field(default=60.0, ge=0)
    # Rate limits
    llm_rate_limits: Annotated[tuple[RateLimit, ...], NoDecode] = ()
    llm_rate_limit_max_wait_s: float = Field(default=5.0, ge=0)
    llm_rate_limit_headroom: float = Field(default=0.02, ge=0.0, lt=1.0)

    sim_plan_latency_s: float = 1.9
    sim_synthesize_latency_s: float = 1.6
    sim_validate_latency_s: float = 0.8
    sim_latency_jitter: float = 0.1
    sim_latency_scale: float = Field(default=1.0, ge=0.0)
    sim_tool_latency_s: float = Field(default=0.5, ge=0.0)

    goal_max_tokens: int | None = Field(default=200_000, ge=1)
    goal_max_cost_usd: float | None = Field(default=1.0, ge=0)
    max_replans: int = Field(default=1, ge=0)
    max_plan_steps: int = Field(default=32, ge=1)
    max_fan_out: int = Field(default=16, ge=1)
    step_lease_s: float = Field(default=30.0, gt=0)
    step_max_attempts: int = Field(default=3, ge=1)
    tool_step_time_limit_s: float = Field(default=120.0, gt=0)
    llm_step_time_limit_s: float = Field(default=300.0, gt=0)
    planning_stale_s: float = Field(default=300.0, gt=0)
    reconcile_interval_s: float = Field(default=10.0, gt=0)
    reconcile_stale_s: float = Field(default=30.0, gt=0)
    db_retry_max_s: float = Field(default=120.0, gt=0)
    broker_visibility_timeout_s: float | None = Field(default=None, gt=0)
    redis_require_noeviction: bool = True

    worker_concurrency: int = Field(default=32, ge=1)
    worker_pool: str = "threads"
    db_pool_size: int = Field(default=20, ge=1)
    result_poll_interval_s: float = 0.1

    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    auth_enabled: bool = True

    memory_retention_days: int = Field(default=30, ge=1)
    tool_modules: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("tool_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("llm_rate_limits", mode="before")
    @classmethod
    def _parse_rate_limits(cls, value: object) -> object:
        return parse_rate_limits(value) if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str | None) -> str | None:
        """Accept ``postgres://`` and ``postgresql://`` and select the psycopg 3 driver."""
        if value is None or value == "":
            return None
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix):]
        return value

    @field_validator("redis_url")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("goal_max_tokens", "goal_max_cost_usd", "broker_visibility_timeout_s",
                     "tenant_max_tokens_per_goal", "tenant_max_cost_usd_per_goal", mode="before")
    @classmethod
    def _blank_means_no_limit(cls, value: object) -> object:
        """``GOAL_MAX_TOKENS=`` (or ``none``) turns the limit off."""
        if isinstance(value, str) and value.strip().lower() in {"", "none", "null"}:
            return None
        return value

    @field_validator("openai_base_url", "anthropic_base_url", "openai_compatible_base_url",
                     "openai_api_key", "anthropic_api_key", "openai_compatible_api_key",
                     "flower_basic_auth", "memory_default_ttl_s", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """Treat an empty variable (``OPENAI_API_KEY=``) as not set."""
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def longest_step_s(self) -> float:
        """The longest any step may run (seconds): the larger hard time limit."""
        return max(self.tool_step_time_limit_s, self.llm_step_time_limit_s)

    @property
    def visibility_timeout_s(self) -> int:
        """Redis visibility timeout (seconds): longer than any step may run plus its
        lease, so Redis redelivers a message only when its worker is gone for good
        (and a redelivery is a no-op anyway). ``BROKER_VISIBILITY_TIMEOUT_S`` overrides it."""
        if self.broker_visibility_timeout_s is not None:
            return int(self.broker_visibility_timeout_s)
        return int(self.longest_step_s + self.step_lease_s + 60)

    @field_validator("worker_pool")
    @classmethod
    def _known_pool(cls, value: str) -> str:
        if value not in {"threads", "gevent", "prefork", "solo"}:
            raise ValueError(f"worker_pool must be threads, gevent, prefork or solo, not {value!r}")
        return value


# override_settings' values by field name: over the environment, and passed to children.
_overrides: dict[str, Any] = {}
_listeners: list[Callable[[], None]] = []


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings: the environment (and ``.env``) with this process's
    overrides (:func:`override_settings`) on top, read once and cached;
    ``get_settings.cache_clear()`` reads the environment again (overrides stay).

    Raises:
        pydantic.ValidationError: A variable does not parse (``STEP_LEASE_S=abc``).
    """
    return Settings(**_overrides)


def _field_name(name: str) -> str:
    if name.lower() not in Settings.model_fields:
        raise TypeError(f"{name!r} is not a Taskforce setting")
    return name.lower()


def _apply(overrides: dict[str, Any]) -> None:
    Settings(**overrides)  # validate before anything changes
    _overrides.clear()
    _overrides.update(overrides)
    get_settings.cache_clear()
    for listener in list(_listeners):
        listener()


def override_settings(**values: Any) -> Settings:
    """Set settings for this process, on top of the environment, without touching
    ``os.environ``; the engine and the Celery app follow (see :func:`on_settings_change`).

    For the CLI and tests that start servers (embedded Redis and Postgres) and point
    themselves at them; the processes they start receive the same values through
    :func:`child_environment`.

    Args:
        **values: Settings by field or variable name (``redis_url`` or ``REDIS_URL``),
            as values or as the strings the environment would hold.

    Returns:
        The new settings.
    Raises:
        TypeError: A name is not a setting.
        pydantic.ValidationError: A value is invalid (nothing was changed).
    """
    _apply({**_overrides, **{_field_name(k): v for k, v in values.items()}})
    return get_settings()


def reset_settings(*names: str) -> None:
    """Drop the overrides of ``names`` (all of them when none is given): those settings
    come from the environment again."""
    dropped = {_field_name(name) for name in names} if names else set(_overrides)
    _apply({k: v for k, v in _overrides.items() if k not in dropped})


@contextmanager
def overridden_settings(**values: Any) -> Iterator[Settings]:
    """:func:`override_settings` for a ``with`` block; the previous overrides come back
    after it."""
    saved = dict(_overrides)
    try:
        yield override_settings(**values)
    finally:
        _apply(saved)


def on_settings_change(listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener()`` after every change of overrides (so that the engine and the
    Celery app drop connections made with the old values). Returns ``listener``."""
    _listeners.append(listener)
    return listener


def _env_value(value: Any) -> str:
    value = value.get_secret_value() if isinstance(value, SecretStr) else value
    return "" if value is None else ",".join(map(str, value)) if isinstance(
        value, tuple | list) else str(value)


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process (worker, beat, simulator): this process's
    environment, its overrides as variables (``REDIS_URL=...``), then ``extra``."""
    overrides = {name.upper(): _env_value(v) for name, v in _overrides.items()}
    return {**os.environ, **overrides, **(extra or {})}
