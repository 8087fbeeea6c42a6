"""The fleet-wide LLM rate limits an operator configures (``LLM_RATE_LIMITS``): the model
of one limit and the parser of the compact format. Enforced by
:mod:`shared.llm.ratelimit`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RateLimit(BaseModel):
    """One entry of ``LLM_RATE_LIMITS``: a fleet-wide limit for a provider's model.

    Attributes:
        provider: Provider name (``openai``, ``anthropic``, ``openai-compatible``, ...).
        model: Model name, or ``*`` for every model of the provider that has no entry
            of its own; each such model gets a budget of its own, as vendors set their
            limits per model.
        rpm: Requests per minute, or None for no request limit.
        tpm: Tokens per minute (input plus output), or None for no token limit.
    """

    model_config = ConfigDict(frozen=True)

    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)


def parse_rate_limits(text: str) -> tuple[RateLimit, ...]:
    """Parse the compact ``LLM_RATE_LIMITS`` format.

    Comma-separated entries ``PROVIDER:MODEL=LIMIT[/LIMIT]``, where each LIMIT is a
    positive integer followed by ``rpm`` (requests per minute) or ``tpm`` (tokens per
    minute), and MODEL may be ``*``. Whitespace is ignored; the model is everything
    between the first ``:`` and the last ``=`` (so ``llama3:8b`` works). Example:
    ``openai:gpt-4o-mini=600rpm/200000tpm, anthropic:*=50rpm``.

    Raises:
        ValueError: An entry is malformed, a limit is not positive, an entry sets the
            same dimension twice or none at all, or a (provider, model) is repeated.
    """
    limits: dict[tuple[str, str], RateLimit] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        key, sep, values = entry.rpartition("=")
        provider, colon, model = key.partition(":")
        provider, model = provider.strip(), model.strip()
        if not sep or not colon or not provider or not model:
            raise ValueError(f"rate limit {entry!r} is not PROVIDER:MODEL=LIMIT[/LIMIT]")
        found: dict[str, int] = {}
        for value in (v.strip().lower().replace(" ", "") for v in values.split("/")):
            unit = value[-3:]
            number = value[:-3]
            if unit not in ("rpm", "tpm") or not (number.isascii() and number.isdigit()):
                raise ValueError(f"rate limit {entry!r}: {value!r} is not <integer>rpm "
                                 "or <integer>tpm")
            if unit in found:
                raise ValueError(f"rate limit {entry!r} sets {unit} twice")
            found[unit] = int(number)
            if found[unit] <= 0:
                raise ValueError(f"rate limit {entry!r}: {value!r} must be positive")
        if (provider, model) in limits:
            raise ValueError(f"rate limit for {provider}:{model} is given twice")
        limits[(provider, model)] = RateLimit(provider=provider, model=model, **found)
    return tuple(limits.values())
