"""Taskforce's metric instruments, made once per process on first use.

Until :func:`shared.telemetry.setup` installs a meter provider they are OpenTelemetry's
proxies (recording does nothing); afterwards they record into it. The names and bucket
boundaries of the ``gen_ai.*`` instruments are those of the OpenTelemetry GenAI
semantic conventions (metrics, status "development").
"""

from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace

from shared.telemetry.setup import meter

# Bucket boundaries advised by the GenAI semantic conventions.
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864]
DURATION_BUCKETS_S = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24,
                      20.48, 40.96, 81.92]
# Dispatch latency and rate-limit waits are mostly milliseconds, sometimes seconds.
SHORT_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0]


@lru_cache(maxsize=1)
def instruments() -> SimpleNamespace:
    """The instruments (created on first call):

    * ``step_duration``: histogram, seconds a step's run took (tool call or LLM call),
      by ``taskforce.step.kind``, ``taskforce.tool.name`` and ``taskforce.step.outcome``.
    * ``dispatch_latency``: histogram, seconds from the publish that follows a
      dependency's commit (or a plan's) to the dependent's task starting on a worker,
      by ``taskforce.step.kind``.
    * ``token_usage``: ``gen_ai.client.token.usage``, tokens per call by
      ``gen_ai.token.type`` (``input``/``output``), provider and model.
    * ``operation_duration``: ``gen_ai.client.operation.duration``, seconds per call.
    * ``llm_cost``: counter, USD of recorded LLM calls by provider and model.
    * ``rate_limit_wait``: histogram, seconds waited for fleet-wide LLM capacity, by
      provider, model and ``taskforce.rate_limit.outcome`` (``granted``/``refused``).
    * ``reconciler_repairs``: counter, repairs by ``taskforce.repair`` kind.
    * ``lease_losses``: counter, step results discarded because the lease was lost.
    """
    m = meter()
    return SimpleNamespace(
        step_duration=m.create_histogram(
            "taskforce.step.duration", unit="s",
            description="Duration of a step's run (its tool call or LLM call)",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S),
        dispatch_latency=m.create_histogram(
            "taskforce.step.dispatch_latency", unit="s",
            description="From the publish after a dependency's commit to the step's start",
            explicit_bucket_boundaries_advisory=SHORT_BUCKETS_S),
        token_usage=m.create_histogram(
            "gen_ai.client.token.usage", unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS),
        operation_duration=m.create_histogram(
            "gen_ai.client.operation.duration", unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S),
        llm_cost=m.create_counter(
            "taskforce.llm.cost", unit="USD", description="Cost of recorded LLM calls"),
        rate_limit_wait=m.create_histogram(
            "taskforce.llm.rate_limit.wait", unit="s",
            description="Time waited for fleet-wide LLM capacity",
            explicit_bucket_boundaries_advisory=SHORT_BUCKETS_S),
        reconciler_repairs=m.create_counter(
            "taskforce.reconciler.repairs", unit="{repair}",
            description="Repairs made by the reconciler"),
        lease_losses=m.create_counter(
            "taskforce.step.lease_losses", unit="{step}",
            description="Step results discarded because another attempt took the lease"),
    )


def record_llm_cost(provider: str, model: str, usd: float) -> None:
    """Count ``usd`` (US dollars) spent on one call of ``provider``/``model``."""
    if usd > 0:
        instruments().llm_cost.add(usd, {"gen_ai.provider.name": provider,
                                         "gen_ai.request.model": model})


def record_rate_limit_wait(provider: str, model: str, seconds: float, *, granted: bool) -> None:
    """Record a wait of ``seconds`` for fleet-wide capacity (granted or refused)."""
    instruments().rate_limit_wait.record(max(0.0, seconds), {
        "gen_ai.provider.name": provider, "gen_ai.request.model": model,
        "taskforce.rate_limit.outcome": "granted" if granted else "refused"})


def record_repairs(counts: dict[str, int | bool]) -> None:
    """Count one reconciler pass's repairs (``Repairs.as_dict()``; zeros are skipped)."""
    for repair, count in counts.items():
        if repair != "locked" and not isinstance(count, bool) and count > 0:
            instruments().reconciler_repairs.add(count, {"taskforce.repair": repair})


def record_lease_loss(kind: str) -> None:
    """Count one step result discarded because its lease was lost."""
    instruments().lease_losses.add(1, {"taskforce.step.kind": kind})


def record_dispatch_latency(kind: str | None, seconds: float) -> None:
    """Record how long a step waited from its publish to its start (seconds)."""
    instruments().dispatch_latency.record(max(0.0, seconds),
                                          {"taskforce.step.kind": kind or "unknown"})
