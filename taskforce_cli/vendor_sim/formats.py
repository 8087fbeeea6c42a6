"""Wire formats the simulator speaks: OpenAI Chat Completions and Anthropic Messages.

Requests are read into a :class:`SimCall` (what to answer and how to count it) from
what a real model would read: the purpose from the system prompt (one of
:data:`shared.llm.roles.SYSTEM_PROMPTS`), the inputs from the data section of the last
user message (:func:`shared.llm.base.read_data_section`);
responses and errors are built as each vendor documents them, with the marks of
:mod:`shared.llm.wire` (``system_fingerprint``, ``msg_sim_`` ids) on successes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from shared.llm.base import read_data_section
from shared.llm.providers.sim.provider import simulated_tokens
from shared.llm.roles import purpose_of
from shared.llm.wire import SIM_FINGERPRINT, SIM_MESSAGE_ID_PREFIX


class WireError(Exception):
    """A request the simulator cannot answer (a 400 with ``message``)."""


@dataclass
class SimCall:
    """One request, read from either wire format.

    Attributes:
        model: Model name asked for (echoed back).
        purpose: ``plan``, ``validate`` or ``synthesize`` (from the system prompt).
        data: The request's inputs (from the data section of the last user message).
        input_tokens: Simulated input tokens: characters / 4, rounded up, of the system
            prompt, the user messages and the answer's JSON schema (as JSON), as
            :func:`shared.llm.ratelimit.estimate_tokens` counts them.
        max_tokens: Output token cap asked for.
        tool: Anthropic: the tool the model must call, if any.
        system: The system prompt received.
        user: The user messages received, joined.
    """

    model: str
    purpose: str
    data: dict[str, Any]
    input_tokens: int
    max_tokens: int | None
    tool: str | None = None
    system: str = ""
    user: str = ""


def _text(content: Any) -> str:
    """Text of a message's content: a string, or a list of ``{"type": "text"}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _call(model: Any, system: str, users: list[str], schemas: list[Any], max_tokens: Any,
          tool: str | None = None) -> SimCall:
    if not isinstance(model, str) or not model:
        raise WireError("model is required")
    purpose = purpose_of(system)
    if purpose is None:
        raise WireError("the system prompt is none of Taskforce's roles: the simulator "
                        "answers Taskforce's requests only")
    data = read_data_section(users[-1] if users else "")
    if data is None:
        raise WireError("no <data> section holding a JSON object in the last user "
                        "message: the simulator answers Taskforce's requests only")
    text = system + "".join(users) + "".join(json.dumps(s) for s in schemas if s)
    cap = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None
    return SimCall(model, purpose, data, simulated_tokens(text), cap, tool, system,
                   "".join(users))


def openai_call(body: dict[str, Any], *, json_schema: bool = True) -> SimCall:
    """Read a Chat Completions request.

    Raises:
        WireError: No model, no Taskforce system prompt or data section, or
            (``json_schema`` False) a
            ``json_schema`` response format, as older self-hosted servers refuse it.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise WireError("messages must be a non-empty list")
    fmt = body.get("response_format") or {}
    if not json_schema and fmt.get("type") == "json_schema":
        raise WireError("response_format json_schema is not supported by this server")
    system = [_text(m.get("content")) for m in messages
              if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    users = [_text(m.get("content")) for m in messages
             if isinstance(m, dict) and m.get("role") == "user"]
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    schema = (fmt.get("json_schema") or {}).get("schema")
    return _call(body.get("model"), "".join(system), users, [schema], cap)


def anthropic_call(body: dict[str, Any]) -> SimCall:
    """Read a Messages request (``system`` as text or blocks, ``tools``, ``tool_choice``).

    Raises:
        WireError: No model, no ``max_tokens``, or no Taskforce system prompt or data
            section.
    """
    if not isinstance(body.get("max_tokens"), int):
        raise WireError("max_tokens: field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise WireError("messages: at least one message is required")
    system = _text(body.get("system"))
    users = [_text(m.get("content")) for m in messages
             if isinstance(m, dict) and m.get("role") == "user"]
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    tool = choice.get("name") if choice.get("type") == "tool" else None
    if tool is None and choice.get("type") in ("any", "auto") and tools:
        tool = tools[0].get("name")
    schemas = [t.get("input_schema") for t in tools if isinstance(t, dict)]
    return _call(body.get("model"), system, users, schemas, body.get("max_tokens"), tool)


def openai_response(call: SimCall, *, number: int, content: str, output_tokens: int,
                    finish_reason: str = "stop") -> dict[str, Any]:
    """A ``chat.completion`` object carrying ``content``."""
    return {
        "id": f"chatcmpl-sim-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model,
        "system_fingerprint": SIM_FINGERPRINT,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": None},
            "logprobs": None,
            "finish_reason": finish_reason,
        }],
        "usage": {
            "prompt_tokens": call.input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": call.input_tokens + output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


def anthropic_response(call: SimCall, *, number: int, data: dict[str, Any] | None,
                       text: str | None, output_tokens: int,
                       stop_reason: str) -> dict[str, Any]:
    """A ``message`` object: a tool_use block with ``data`` as its input, or a text block."""
    if data is not None and call.tool:
        content = [{"type": "tool_use", "id": f"toolu_sim_{number}", "name": call.tool,
                    "input": data}]
    else:
        content = [{"type": "text", "text": text if text is not None else json.dumps(data)}]
    return {
        "id": f"{SIM_MESSAGE_ID_PREFIX}{number}",
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": call.input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                 404: "invalid_request_error", 429: "requests", 500: "server_error",
                 503: "server_error"}
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    403: "permission_error", 404: "not_found_error",
                    413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                    529: "overloaded_error"}


def openai_error(status: int, message: str) -> dict[str, Any]:
    """An OpenAI error body."""
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = "rate_limit_exceeded" if status == 429 else None
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    """An Anthropic error body."""
    kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}
