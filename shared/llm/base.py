"""The provider seam: one request shape in, parsed JSON and token usage out.

Providers own the wire (client, key, base URL, format). The roles in
``shared.llm.roles`` own the prompts and the pydantic models the JSON must fit.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

Purpose = Literal["plan", "validate", "synthesize"]


class Usage(BaseModel):
    """Token usage of one call (tokens as the provider counts them)."""

    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cached_tokens: int = Field(default=0, ge=0)

    @property
    def total(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


class LLMRequest(BaseModel):
    """One structured-output request.

    Attributes:
        purpose: Which role asks (``plan``, ``validate`` or ``synthesize``).
        model: Model name as the provider knows it.
        system: System prompt.
        prompt: User prompt; it embeds ``payload`` as JSON for real models.
        payload: The same content as structured data (the goal, tools, step outputs),
            which the deterministic ``sim`` provider reads instead of the prose.
        output_schema: JSON schema the answer must fit.
        max_output_tokens: Cap on output tokens.
    """

    purpose: Purpose
    model: str
    system: str
    prompt: str
    payload: dict[str, Any]
    output_schema: dict[str, Any]
    max_output_tokens: int = 2_048


class LLMResult(BaseModel):
    """What a provider returns.

    Attributes:
        data: The parsed JSON object of the answer (not yet checked against a model).
        usage: Token usage.
        latency_s: Wall time of the call (seconds), simulated latency included.
        simulated: True when no real model produced this.
    """

    data: dict[str, Any]
    usage: Usage
    latency_s: float
    simulated: bool


class LLMProvider(Protocol):
    """A source of structured completions (OpenAI, Anthropic, compatible servers, sim)."""

    name: str
    default_model: str

    def generate(self, request: LLMRequest) -> LLMResult:
        """Run one request.

        Raises:
            RetryableLLMError: A transient failure (rate limit, 5xx, timeout).
            LLMError: A final failure (bad request, unparseable answer).
        """
        ...
