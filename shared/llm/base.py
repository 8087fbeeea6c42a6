"""The provider seam: one request shape in, parsed JSON and token usage out.

Providers own the wire (client, key, base URL, format). The roles in
``shared.llm.roles`` own the prompts and the pydantic models the JSON must fit.
"""

from __future__ import annotations

import json
from typing import Any, Literal, NamedTuple, Protocol

from pydantic import BaseModel, Field

Purpose = Literal["plan", "validate", "synthesize", "react", "summarize"]


class Usage(BaseModel):
    """Token usage of one call (tokens as the provider counts them)."""

    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cached_tokens: int = Field(default=0, ge=0)

    @property
    def total(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


DATA_OPEN = "<data>"
DATA_CLOSE = "</data>"


class LLMRequest(BaseModel):
    """One structured-output request.

    Its text reaches a model only through :func:`render`: the role's system prompt,
    then one user message holding the ``data`` section and the ``instruction``.

    Attributes:
        purpose: Which role asks (``plan``, ``validate``, ``synthesize``, ``react`` for
            one turn of a ReAct goal, or ``summarize``, the session compaction's).
        model: Model name as the provider knows it.
        system: System prompt (the role's fixed instructions).
        instruction: The task, in a sentence or two, after the data section; it names
            the data's fields and never repeats their values.
        data: The request's structured inputs (the goal, tools, step outputs, replan
            context...), stated once, as JSON, in the data section. Untrusted text
            (tool outputs, errors, earlier answers) belongs here and nowhere else.
        output_schema: JSON schema the answer must fit.
        max_output_tokens: Cap on output tokens.
    """

    purpose: Purpose
    model: str
    system: str
    instruction: str
    data: dict[str, Any]
    output_schema: dict[str, Any]
    max_output_tokens: int = 2_048


class RenderedPrompt(NamedTuple):
    """The two texts a provider sends: the system prompt and the one user message."""

    system: str
    user: str


def data_section(data: dict[str, Any]) -> str:
    """The data section: ``<data>`` + compact canonical JSON of ``data`` + ``</data>``.

    Canonical: keys sorted, no spaces, non-ASCII kept as is (fewer tokens than
    ``\\u`` escapes); values JSON cannot hold are written with ``str``. Every ``<``
    is written ``\\u003c``, so no text inside can close the section early; the JSON
    still decodes to the same value. This is the one place the section is built.
    """
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return DATA_OPEN + body.replace("<", "\\u003c") + DATA_CLOSE


TRUNCATION_MARK = "…[truncated {} chars]"
"""Appended to an untrusted item cut by :func:`truncate_untrusted` (the count it cut)."""


def truncate_untrusted(value: Any, max_chars: int) -> Any:
    """One untrusted item (a tool output, an error, an earlier answer) cut to size.

    A string longer than ``max_chars`` characters keeps its first ``max_chars`` and gets
    :data:`TRUNCATION_MARK`; any other JSON value whose compact JSON is longer becomes
    that JSON text, cut the same way. Anything within the limit is returned unchanged.

    Args:
        value: A string or any JSON value (values JSON cannot hold are written with
            ``str``, as :func:`data_section` does).
        max_chars: Most characters kept (``LLM_UNTRUSTED_MAX_CHARS``), at least 1.

    Returns:
        ``value`` itself, or a string of ``max_chars`` characters plus the mark.
    """
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          default=str)
    if len(text) <= max_chars:
        return value
    return text[:max_chars] + TRUNCATION_MARK.format(len(text) - max_chars)


def read_data_section(text: str) -> dict[str, Any] | None:
    """The JSON object of the first data section of ``text``, or None if it has none."""
    start = text.find(DATA_OPEN)
    end = text.find(DATA_CLOSE, start + len(DATA_OPEN)) if start >= 0 else -1
    if end < 0:
        return None
    try:
        data = json.loads(text[start + len(DATA_OPEN): end])
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def render(request: LLMRequest) -> RenderedPrompt:
    """The system prompt and user message of ``request``, exactly as providers send them.

    The user message is the data section, a blank line, then the instruction.
    """
    user = f"{data_section(request.data)}\n\n{request.instruction}"
    return RenderedPrompt(request.system, user)


def schema_text(request: LLMRequest) -> str:
    """The output schema as the simulator and the token estimate count it (JSON)."""
    return json.dumps(request.output_schema)


def input_chars(request: LLMRequest) -> int:
    """Characters of input a provider sends for ``request``: system prompt, user
    message and output schema (vendors count a structured-output schema as input).

    The texts are exact; the schema is counted as :func:`schema_text` writes it, which
    is what Anthropic's tool and OpenAI's non-strict ``response_format`` carry. OpenAI's
    strict mode adds ``additionalProperties`` and ``required`` to a small schema (a few
    dozen characters more).
    """
    system, user = render(request)
    return len(system) + len(user) + len(schema_text(request))


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
