"""Token prices per provider and model, in US dollars per million tokens.

Every price carries its source and the date it was read. The table is versioned by
``PRICING_VERSION``: a change of price is a new version, so stored costs stay
explainable.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICING_VERSION = "2026-11-21"


@dataclass(frozen=True)
class Price:
    """Price of one model.

    Attributes:
        input_per_mtok: USD per million input tokens.
        output_per_mtok: USD per million output tokens.
        cached_input_per_mtok: USD per million cached input tokens.
        source: Where the figure comes from.
        as_of: Date the figure was read (ISO 8601).
    """

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float
    source: str
    as_of: str


SIM_PRICE = Price(0.0, 0.0, 0.0, "simulated model: no money is spent", PRICING_VERSION)

PRICES: dict[tuple[str, str], Price] = {
    ("sim", "*"): SIM_PRICE,
}


def price_for(provider: str, model: str) -> Price | None:
    """The price of ``model`` at ``provider`` (an exact entry, else the provider's ``*``)."""
    return PRICES.get((provider, model)) or PRICES.get((provider, "*"))


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
