"""Token prices per provider and model, in US dollars per million tokens.

Every price carries its source (the vendor's pricing page) and ``as_of``, the date on
which that page is known to have shown the figure. The table is versioned by
``PRICING_VERSION``: a change of price is a new version, so stored costs stay
explainable. Prices are the standard (not batch, not priority) tier; cached input is
OpenAI's "cached input" and Anthropic's "cache hits" price. Anthropic's cache writes
are not modelled (Taskforce sets no ``cache_control``), nor are long-context surcharges
(Claude Sonnet 4 and 4.5 above 200K input tokens).

Dated snapshots resolve to their family (``claude-3-5-haiku-20241022`` →
``claude-3-5-haiku``, ``gpt-4o-mini-2024-07-18`` → ``gpt-4o-mini``) unless the snapshot
has its own entry (``gpt-4o-2024-05-13`` was priced apart). ``openai-compatible``
models are self-hosted and cost 0 per token by default; to charge for a server's time,
add an entry ``("openai-compatible", "<model>")``, or set ``MODEL_PRICES``.

The operator's ``MODEL_PRICES`` setting (``provider:model=input/output``, USD per million
tokens, comma-separated, e.g. ``openai-compatible:llama3=0.1/0.2``) prices models the
table does not know, and takes precedence over the table for the models it names.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from shared.errors import ConfigurationError
from shared.settings import get_settings

PRICING_VERSION = "2026-11-21"

OPENAI_SOURCE = "OpenAI API pricing page (platform.openai.com/docs/pricing)"
ANTHROPIC_SOURCE = "Anthropic pricing page (docs.anthropic.com/en/docs/about-claude/pricing)"


@dataclass(frozen=True)
class Price:
    """Price of one model.

    Attributes:
        input_per_mtok: USD per million input tokens.
        output_per_mtok: USD per million output tokens.
        cached_input_per_mtok: USD per million cached input tokens.
        source: Where the figure comes from.
        as_of: Date the source showed the figure (ISO 8601).
    """

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float
    source: str
    as_of: str


SIM_PRICE = Price(0.0, 0.0, 0.0, "simulated model: no money is spent", PRICING_VERSION)
SELF_HOSTED_PRICE = Price(0.0, 0.0, 0.0, "self-hosted server: no per-token charge",
                          PRICING_VERSION)


def _openai(inp: float, out: float, cached: float) -> Price:
    return Price(inp, out, cached, OPENAI_SOURCE, "2025-08-07")


def _anthropic(inp: float, out: float, cached: float) -> Price:
    return Price(inp, out, cached, ANTHROPIC_SOURCE, "2025-11-24")


PRICES: dict[tuple[str, str], Price] = {
    ("sim", "*"): SIM_PRICE,
    ("openai-compatible", "*"): SELF_HOSTED_PRICE,
    # OpenAI: input, output, cached input (USD per million tokens).
    ("openai", "gpt-4o"): _openai(2.50, 10.00, 1.25),
    ("openai", "gpt-4o-2024-05-13"): _openai(5.00, 15.00, 5.00),
    ("openai", "gpt-4o-mini"): _openai(0.15, 0.60, 0.075),
    ("openai", "gpt-4.1"): _openai(2.00, 8.00, 0.50),
    ("openai", "gpt-4.1-mini"): _openai(0.40, 1.60, 0.10),
    ("openai", "gpt-4.1-nano"): _openai(0.10, 0.40, 0.025),
    ("openai", "o3-mini"): _openai(1.10, 4.40, 0.55),
    ("openai", "o4-mini"): _openai(1.10, 4.40, 0.275),
    ("openai", "o3"): _openai(2.00, 8.00, 0.50),
    ("openai", "gpt-5"): _openai(1.25, 10.00, 0.125),
    ("openai", "gpt-5-mini"): _openai(0.25, 2.00, 0.025),
    ("openai", "gpt-5-nano"): _openai(0.05, 0.40, 0.005),
    # Anthropic: base input, output, cache hits (USD per million tokens).
    ("anthropic", "claude-3-haiku"): _anthropic(0.25, 1.25, 0.03),
    ("anthropic", "claude-3-5-haiku"): _anthropic(0.80, 4.00, 0.08),
    ("anthropic", "claude-haiku-4-5"): _anthropic(1.00, 5.00, 0.10),
    ("anthropic", "claude-3-7-sonnet"): _anthropic(3.00, 15.00, 0.30),
    ("anthropic", "claude-sonnet-4"): _anthropic(3.00, 15.00, 0.30),
    ("anthropic", "claude-sonnet-4-5"): _anthropic(3.00, 15.00, 0.30),
    ("anthropic", "claude-opus-4"): _anthropic(15.00, 75.00, 1.50),
    ("anthropic", "claude-opus-4-1"): _anthropic(15.00, 75.00, 1.50),
    ("anthropic", "claude-opus-4-5"): _anthropic(5.00, 25.00, 0.50),
}

# A snapshot or alias suffix: -20241022, -2024-07-18, -latest, or Anthropic's -0
# (claude-sonnet-4-0).
_SNAPSHOT = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest|0)$")


def model_family(model: str) -> str:
    """``model`` without its snapshot suffix (``claude-3-5-haiku-20241022`` →
    ``claude-3-5-haiku``, ``claude-sonnet-4-0`` → ``claude-sonnet-4``)."""
    return _SNAPSHOT.sub("", model)


@lru_cache(maxsize=8)
def parse_model_prices(text: str) -> dict[tuple[str, str], Price]:
    """Parse ``MODEL_PRICES``: ``provider:model=input/output[,...]`` in USD per million
    input and output tokens (cached input is charged as input). ``model`` may be ``*``.

    Raises:
        ConfigurationError: An entry is not of that form, or a price is negative or not
            a finite number.
    """
    prices: dict[tuple[str, str], Price] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        name, _, figures = entry.rpartition("=")
        provider, _, model = name.partition(":")
        inp, _, out = figures.partition("/")
        try:
            values = (float(inp), float(out))
        except ValueError:
            values = (math.nan, math.nan)
        if not (provider.strip() and model.strip()) or not all(
                math.isfinite(v) and v >= 0 for v in values):
            raise ConfigurationError(
                f"MODEL_PRICES: {entry!r} is not provider:model=input/output with prices "
                "in USD per million tokens, e.g. openai-compatible:llama3=0.1/0.2")
        prices[(provider.strip(), model.strip())] = Price(
            values[0], values[1], values[0], "operator's MODEL_PRICES setting",
            PRICING_VERSION)
    return prices


def price_for(provider: str, model: str) -> Price | None:
    """The price of ``model`` at ``provider``: the operator's ``MODEL_PRICES`` entry, else
    an exact entry, else the model's family, else the provider's ``*``; None when unknown.

    Raises:
        ConfigurationError: ``MODEL_PRICES`` cannot be parsed.
    """
    configured = parse_model_prices(get_settings().model_prices)
    return (configured.get((provider, model)) or configured.get((provider, "*"))
            or PRICES.get((provider, model))
            or PRICES.get((provider, model_family(model)))
            or PRICES.get((provider, "*")))


def cost_usd(provider: str, model: str, input_tokens: int, output_tokens: int,
             cached_tokens: int = 0) -> float:
    """Cost of one call in USD; 0.0 for a model with no known price.

    Args:
        provider: Provider name (``sim``, ``openai``, ...).
        model: Model name.
        input_tokens: Input tokens, cached ones included.
        output_tokens: Output tokens.
        cached_tokens: Part of ``input_tokens`` served from the provider's cache.
    """
    price = price_for(provider, model)
    if price is None:
        return 0.0
    fresh = max(input_tokens - cached_tokens, 0)
    return (
        fresh * price.input_per_mtok
        + cached_tokens * price.cached_input_per_mtok
        + output_tokens * price.output_per_mtok
    ) / 1_000_000
