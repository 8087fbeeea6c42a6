"""The settings that bound what clients, LLMs and tools may do: tool limits, Flower's
credentials, approvals, input limits, tenant quotas and ceilings, and the size of
untrusted text in prompts.

A base class of :class:`shared.settings.Settings` (read through
:func:`shared.settings.get_settings`, never on its own), kept apart so that each module
stays readable. Every field is an environment variable of the same name in upper case.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings


class BoundsSettings(BaseSettings):
    """Limits and ceilings, each with its unit. The input limits, tenant quotas and the
    size of untrusted text are described by the comment above each field.

    Attributes:
        tool_cpu_time_limit_s: Longest one call of a CPU-bound (``isolated``) tool, such
            as ``calculator``, may compute (seconds); its child process is then killed
            and the step fails with "time limit exceeded" (see
            :mod:`shared.tools.isolation`).
        tool_cpu_processes: Child processes per worker process for isolated tools.
        tool_echo_max_delay_s: Longest delay ``echo`` accepts (seconds); longer ones
            are refused.
        flower_basic_auth: Flower's HTTP basic-auth credentials,
            ``user:password[,user2:password2]`` (``FLOWER_BASIC_AUTH``, the variable
            Flower itself reads). ``taskforce flower`` refuses to start without it,
            unless told ``--unauthenticated`` on a loopback address. Secret.
        approval_timeout_s: A step awaiting approval for longer than this (seconds) is
            rejected by the reconciler (``approval_by='timeout'``) and its goal fails.
    """

    # Hardening of tools and of the monitoring UI.
    tool_cpu_time_limit_s: float = Field(default=5.0, gt=0)
    tool_cpu_processes: int = Field(default=1, ge=1, le=8)
    tool_echo_max_delay_s: float = Field(default=30.0, ge=0)
    flower_basic_auth: SecretStr | None = None
    # Approval of risky steps (human in the loop)
    approval_timeout_s: float = Field(default=3600.0, gt=0)
    # Input limits (shared.domain.limits, api_gateway.limits). Checked at the gateway
    # before any parsing work, and again on every plan, whether a client or an LLM wrote it.
    # MAX_REQUEST_BYTES: largest request body the gateway reads (bytes); larger is a 413.
    max_request_bytes: int = Field(default=1_048_576, ge=1_024)
    # MAX_JSON_DEPTH: most nesting of objects/arrays in a body, metadata or step args.
    max_json_depth: int = Field(default=32, ge=2, le=200)
    # MAX_GOAL_CHARS: longest goal text (characters).
    max_goal_chars: int = Field(default=20_000, ge=1)
    # MAX_METADATA_BYTES: largest goal metadata, as compact UTF-8 JSON (bytes).
    max_metadata_bytes: int = Field(default=16_384, ge=2)
    # MAX_STEP_ARGS_BYTES: largest arguments of one plan step, as compact UTF-8 JSON (bytes).
    max_step_args_bytes: int = Field(default=32_768, ge=2)
    # MAX_REQUEST_TOKENS: largest max_tokens a request may ask for (tokens).
    max_request_tokens: int = Field(default=10_000_000, ge=1, le=2**62)
    # MAX_REQUEST_COST_USD: largest max_cost_usd a request may ask for (USD; the column
    # is numeric(14, 8), so below 1,000,000).
    max_request_cost_usd: float = Field(default=1_000.0, gt=0, lt=1_000_000)
    # Quotas and ceilings per tenant (shared.quotas, which parses the two strings); a
    # tenant's own limits (`taskforce keys tenant`) override these. Goals per minute and
    # goals not yet ended (429); USD of LLM calls per UTC day; caps on a goal's max_tokens
    # and max_cost_usd (none: no cap); ALLOWED_MODELS: provider:model patterns ("": sim:*
    # and each provider's default model); MODEL_PRICES: provider:model=in/out USD per 1M.
    # TENANT_QUOTAS_ENABLED=false: no goals-per-minute nor goals-in-flight quota (a
    # single-tenant deployment behind its own limits); the other ceilings still apply.
    tenant_quotas_enabled: bool = True
    tenant_goals_per_minute: int = Field(default=60, ge=1)
    tenant_max_goals_in_flight: int = Field(default=100, ge=1)
    tenant_daily_usd: float = Field(default=10.0, ge=0, lt=1_000_000)
    tenant_max_tokens_per_goal: int | None = Field(default=None, ge=1)
    tenant_max_cost_usd_per_goal: float | None = Field(default=None, ge=0, lt=1_000_000)
    allowed_models: str = ""
    model_prices: str = ""
    # LLM_UNTRUSTED_MAX_CHARS: most characters of each tool output, error or earlier answer
    # in a prompt's data section (shared.llm.roles.untrusted); longer ones are cut, marked.
    llm_untrusted_max_chars: int = Field(default=4_000, ge=100)
