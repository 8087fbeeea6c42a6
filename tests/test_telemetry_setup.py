"""Telemetry's configuration rules and its spans, each in a process of its own (a
process sets telemetry up once), exporting to a loopback OTLP receiver."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from shared.errors import ConfigurationError
from shared.settings import Settings, child_environment
from shared.telemetry.config import export_plan
from taskforce_cli import otlp_sink
from tests.conftest import REPO

# No OTEL_* variable from the environment the suite runs in may leak into these.
CLEAN = {"_env_file": None, "otel_sdk_disabled": False, "otel_exporter_otlp_endpoint": None,
         "otel_exporter_otlp_traces_endpoint": None, "otel_traces_exporter": None,
         "otel_exporter_otlp_metrics_endpoint": None, "otel_metrics_exporter": None,
         "otel_service_name": None, "otel_python_disabled_instrumentations": ""}


def plan_for(role: str = "worker", **values):
    return export_plan(Settings(**(CLEAN | values)), role)


def test_nothing_is_exported_when_nothing_is_configured() -> None:
    plan = plan_for()
    assert (plan.traces, plan.traces_endpoint, plan.metrics_endpoint) == (None, None, None)
    assert plan.service_name == "taskforce-worker" and not plan.capture_content


def test_an_endpoint_turns_traces_and_metrics_on_with_the_standard_paths() -> None:
    plan = plan_for("gateway", otel_exporter_otlp_endpoint="http://collector:4318/")
    assert plan.traces == "otlp" and plan.service_name == "taskforce-gateway"
    assert plan.traces_endpoint == "http://collector:4318/v1/traces"
    assert plan.metrics_endpoint == "http://collector:4318/v1/metrics"
    only = plan_for(otel_exporter_otlp_traces_endpoint="http://t:4318/custom")
    assert (only.traces_endpoint, only.metrics_endpoint) == ("http://t:4318/custom", None)
    assert plan.disabled == frozenset()
    lighter = plan_for(otel_python_disabled_instrumentations=" redis, SQLAlchemy ,")
    assert lighter.disabled == {"redis", "sqlalchemy"}


def test_exporters_named_none_or_a_disabled_sdk_turn_signals_off() -> None:
    base = {"otel_exporter_otlp_endpoint": "http://collector:4318"}
    assert plan_for(**base, otel_traces_exporter="none").traces is None
    assert plan_for(**base, otel_metrics_exporter="none").metrics_endpoint is None
    off = plan_for(**base, otel_sdk_disabled=True)
    assert (off.traces, off.metrics_endpoint) == (None, None)
    console = plan_for(otel_traces_exporter="console", otel_service_name="svc")
    assert (console.traces, console.service_name) == ("console", "svc")


@pytest.mark.parametrize(("values", "fragment"), [
    ({"otel_traces_exporter": "jaeger"}, "OTEL_TRACES_EXPORTER"),
    ({"otel_metrics_exporter": "prometheus"}, "OTEL_METRICS_EXPORTER"),
    ({"otel_exporter_otlp_endpoint": "http://c:4317", "otel_exporter_otlp_protocol": "grpc"},
     "http/protobuf"),
])
def test_what_is_not_shipped_is_refused_with_a_reason(values, fragment) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        plan_for(**values)


def _python(code: str, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                            capture_output=True, text=True, timeout=120,
                            env=child_environment(env))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_with_nothing_configured_no_provider_nor_instrumentation_is_installed() -> None:
    out = _python("""
        from opentelemetry import trace
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from shared import telemetry
        telemetry.setup("worker")
        print(telemetry.tracing_enabled(), type(trace.get_tracer_provider()).__name__,
              CeleryInstrumentor().is_instrumented_by_opentelemetry)
    """, {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_TRACES_EXPORTER": ""})
    assert out.split() == ["False", "ProxyTracerProvider", "False"]


LLM_CALLS = """
    from shared import telemetry
    from shared.errors import MalformedOutputError
    from shared.llm.base import LLMRequest, LLMResult, Usage
    from shared.telemetry import genai
    telemetry.setup("worker")
    request = LLMRequest(purpose="plan", model="m-1", system="SYSTEM-PROMPT-TEXT",
                         instruction="do it", data={"goal": "SECRET-GOAL-TEXT"},
                         output_schema={"type": "object"}, max_output_tokens=64)
    answer = LLMResult(data={"answer": "ANSWER-TEXT"}, usage=Usage(input_tokens=11,
                       output_tokens=7), latency_s=0.01, simulated=True)
    def malformed(r):
        raise MalformedOutputError("not json: SECRET-GOAL-TEXT", input_tokens=5,
                                   output_tokens=3, raw="x", simulated=True)
    # Client spans are kept inside a trace (a parentless one would be dropped).
    genai.chat("openai", request, lambda r: answer)
    with telemetry.tracer().start_as_current_span("step"):
        genai.chat("openai", request, lambda r: answer)
        try:
            genai.chat("anthropic", request, malformed)
        except MalformedOutputError:
            pass
        try:
            with genai.tool_call("search", goal_id="g", step_id=2, isolated=False):
                raise ValueError("SECRET-GOAL-TEXT")
        except ValueError:
            pass
        try:  # as the instrumentations do: exception event and "Type: message" status
            with telemetry.tracer().start_as_current_span("instrumented"):
                raise KeyError("SECRET-GOAL-TEXT")
        except KeyError:
            pass
    telemetry.shutdown()
"""


@pytest.mark.parametrize("capture", [False, True])
def test_llm_and_tool_spans_follow_the_genai_conventions(capture: bool) -> None:
    with otlp_sink.running() as sink:
        _python(LLM_CALLS, {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
                            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": str(capture)})
        spans = {s.name: s for s in sink.spans()}
        points = sink.points()
    chat = [s for s in sink.spans() if s.name == "chat m-1"]
    assert len(chat) == 2 and all(s.kind == 3 for s in chat)  # CLIENT
    ok, failed = sorted(chat, key=lambda s: s.attributes["gen_ai.provider.name"],
                        reverse=True)
    assert {k: ok.attributes[k] for k in ("gen_ai.operation.name", "gen_ai.provider.name",
            "gen_ai.request.model", "gen_ai.request.max_tokens", "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens")} == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "m-1", "gen_ai.request.max_tokens": 64,
        "gen_ai.usage.input_tokens": 11, "gen_ai.usage.output_tokens": 7}
    assert failed.attributes["error.type"] == "MalformedOutputError"
    assert failed.attributes["gen_ai.usage.input_tokens"] == 5  # billed tokens still count
    assert failed.status_code == 2 and not failed.events  # no exception message recorded
    tool = spans["execute_tool search"]
    assert tool.attributes["gen_ai.tool.name"] == "search"
    assert tool.attributes["error.type"] == "ValueError" and not tool.events
    instrumented = spans["instrumented"]
    assert instrumented.events == [("exception", {"exception.type": "KeyError"})]
    assert (instrumented.status_code, instrumented.status_message) == (2, "KeyError")
    raw = b"".join(sink.bodies)
    if capture:
        assert "SECRET-GOAL-TEXT" in ok.attributes["gen_ai.input.messages"]
        assert "SYSTEM-PROMPT-TEXT" in ok.attributes["gen_ai.system_instructions"]
        assert "ANSWER-TEXT" in ok.attributes["gen_ai.output.messages"]
    else:
        assert b"SECRET-GOAL-TEXT" not in raw and b"SYSTEM-PROMPT-TEXT" not in raw
        assert b"ANSWER-TEXT" not in raw
    # Cumulative sums: the last export of each series holds its total.
    usage = {(p.attributes["gen_ai.provider.name"], p.attributes["gen_ai.token.type"]): p.total
             for p in points if p.metric == "gen_ai.client.token.usage"}
    assert usage == {("anthropic", "input"): 5, ("anthropic", "output"): 3,
                     ("openai", "input"): 22, ("openai", "output"): 14}  # 2 calls, 1 unsampled
    durations = [p for p in points if p.metric == "gen_ai.client.operation.duration"]
    assert {p.attributes.get("error.type") for p in durations} == {None,
                                                                   "MalformedOutputError"}
