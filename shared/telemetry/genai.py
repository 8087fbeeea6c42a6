"""Spans and metrics of the work inside a step: LLM calls (the OpenTelemetry GenAI
semantic conventions), tool calls, and the step's run itself.

An LLM call's span is named ``chat <model>`` (kind CLIENT) and carries
``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
``gen_ai.request.max_tokens``, ``gen_ai.usage.input_tokens`` and
``gen_ai.usage.output_tokens``; a failure sets ``error.type`` (the exception's class,
never its message). The prompt and the answer are recorded only with
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``. A tool call's span is
``execute_tool <tool>`` with ``gen_ai.tool.name``; its arguments and output are never
recorded. Exceptions are not recorded as span events either: their messages may quote
the data a call carried.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared.telemetry.goal_trace import GOAL_ID, STEP_ID
from shared.telemetry.instruments import instruments
from shared.telemetry.setup import capture_content, tracer

if TYPE_CHECKING:
    from shared.llm.base import LLMRequest, LLMResult


def _failed(span: trace.Span, exc: BaseException) -> str:
    error_type = type(exc).__name__
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, error_type))
    return error_type


def chat(provider: str, request: LLMRequest,
         generate: Callable[[LLMRequest], LLMResult]) -> LLMResult:
    """Run ``generate(request)`` (one LLM call of ``provider``) inside its GenAI span,
    and record ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration``.

    Returns:
        What ``generate`` returned.

    Raises:
        Whatever ``generate`` raises (a malformed answer's billed tokens are recorded).
    """
    base = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
            "gen_ai.request.model": request.model}
    started = time.perf_counter()
    with tracer().start_as_current_span(
            f"chat {request.model}", kind=SpanKind.CLIENT,
            attributes=base | {"gen_ai.request.max_tokens": request.max_output_tokens,
                               "taskforce.llm.purpose": request.purpose},
            record_exception=False, set_status_on_exception=False) as span:
        if capture_content() and span.is_recording():
            _record_prompt(span, request)
        try:
            result = generate(request)
        except BaseException as exc:
            error_type = _failed(span, exc)
            billed = (getattr(exc, "input_tokens", 0), getattr(exc, "output_tokens", 0))
            _record_usage(span, base, *billed)
            instruments().operation_duration.record(
                time.perf_counter() - started, base | {"error.type": error_type})
            raise
        _record_usage(span, base, result.usage.input_tokens, result.usage.output_tokens)
        span.set_attribute("taskforce.llm.simulated", result.simulated)
        if capture_content() and span.is_recording():
            span.set_attribute("gen_ai.output.messages", json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": json.dumps(
                    result.data, default=str)}]}]))
    instruments().operation_duration.record(time.perf_counter() - started, base)
    return result


def _record_prompt(span: trace.Span, request: LLMRequest) -> None:
    from shared.llm.base import render

    system, user = render(request)
    span.set_attribute("gen_ai.system_instructions",
                       json.dumps([{"type": "text", "content": system}]))
    span.set_attribute("gen_ai.input.messages", json.dumps(
        [{"role": "user", "parts": [{"type": "text", "content": user}]}]))


def _record_usage(span: trace.Span, base: dict[str, Any], input_tokens: int,
                  output_tokens: int) -> None:
    if not (input_tokens or output_tokens):
        return
    span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
    usage = instruments().token_usage
    usage.record(input_tokens, base | {"gen_ai.token.type": "input"})
    usage.record(output_tokens, base | {"gen_ai.token.type": "output"})


@contextlib.contextmanager
def tool_call(tool: str, *, goal_id: str, step_id: int, isolated: bool) -> Iterator[None]:
    """The span of one tool call (``execute_tool <tool>``); its arguments and output are
    not recorded. A failure sets ``error.type`` and re-raises."""
    with tracer().start_as_current_span(
            f"execute_tool {tool}", kind=SpanKind.INTERNAL,
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                        "gen_ai.tool.type": "function", "taskforce.tool.isolated": isolated,
                        GOAL_ID: goal_id, STEP_ID: step_id},
            record_exception=False, set_status_on_exception=False) as span:
        try:
            yield
        except BaseException as exc:
            _failed(span, exc)
            raise


@contextlib.contextmanager
def step_run(*, goal_id: str, step_id: int, kind: str, tool: str | None,
             attempt: int) -> Iterator[None]:
    """The span of a step's run (``run step <kind>``) and its duration in
    ``taskforce.step.duration``, with its outcome (``succeeded`` or the error's class)."""
    attributes = {"taskforce.step.kind": kind, "taskforce.tool.name": tool or ""}
    started = time.perf_counter()
    outcome = "succeeded"
    with tracer().start_as_current_span(
            f"run step {kind}", attributes=attributes | {
                GOAL_ID: goal_id, STEP_ID: step_id, "taskforce.step.attempt": attempt},
            record_exception=False, set_status_on_exception=False) as span:
        try:
            yield
        except BaseException as exc:
            outcome = _failed(span, exc)
            raise
        finally:
            instruments().step_duration.record(
                time.perf_counter() - started, attributes | {"taskforce.step.outcome": outcome})
