"""How a simulator instance behaves: latency, limits, faults."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_MODELS = (
    "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3-mini",
    "claude-3-5-haiku-20241022", "claude-haiku-4-5", "claude-sonnet-4-5",
    "claude-opus-4-1", "sim-planner-1",
)


@dataclass
class SimulatorConfig:
    """Behaviour of one simulator.

    Attributes:
        latency_s: Mean latency per purpose (seconds). Small by default, for tests;
            ``taskforce sim-llm`` starts from the ``sim`` provider's profile instead
            (``SIM_PLAN_LATENCY_S`` ..., from the LLMCompiler paper).
        latency_jitter: Relative spread of latencies: each is drawn uniformly from
            ``mean * (1 +/- jitter)`` with the seeded RNG.
        rpm: Requests allowed per window (None: no limit).
        tpm: Tokens allowed per window, input and output (None: no limit).
        window_s: Length of the rate-limit window (seconds; 60 means per minute).
        fault_rates: Probability of each fault per request (see ``faults``).
        fault_sequence: Faults for the first requests, in order (``["500", "ok"]``).
        seed: Seed of the RNG behind jitter and fault rates.
        retry_after_s: ``Retry-After`` sent with injected 429s (seconds).
        timeout_sleep_s: How long a ``timeout`` fault holds the response (seconds);
            it ends early when the client disconnects.
        json_schema: Accept ``response_format`` ``json_schema`` on the OpenAI route;
            False answers 400, as some older self-hosted servers do.
        models: Model ids listed by ``GET /v1/models``.
    """

    latency_s: dict[str, float] = field(
        default_factory=lambda: {"plan": 0.01, "validate": 0.01, "synthesize": 0.01,
                                 "react": 0.01})
    latency_jitter: float = 0.1
    rpm: int | None = None
    tpm: int | None = None
    window_s: float = 60.0
    fault_rates: dict[str, float] = field(default_factory=dict)
    fault_sequence: list[str] = field(default_factory=list)
    seed: int = 0
    retry_after_s: float = 1.0
    timeout_sleep_s: float = 120.0
    json_schema: bool = True
    models: tuple[str, ...] = DEFAULT_MODELS


def parse_latencies(items: list[str], base: dict[str, float]) -> dict[str, float]:
    """``base`` updated with ``["plan=1.9", "validate=0.8"]`` (seconds per purpose).

    Raises:
        ValueError: An item is not ``PURPOSE=SECONDS`` for a known purpose.
    """
    latencies = dict(base)
    for item in items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            purpose, sep, value = part.partition("=")
            if not sep or purpose not in ("plan", "validate", "synthesize", "react"):
                raise ValueError(
                    f"latency {part!r} is not plan|validate|synthesize|react=SECONDS")
            latencies[purpose] = max(float(value), 0.0)
    return latencies
