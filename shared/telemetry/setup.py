"""Setting telemetry up in one process, once, after any fork; flushing it at the end.

Each process calls :func:`setup` with its role when it starts serving: the gateway at
application startup, a worker in Celery's ``worker_init`` (threads, gevent, solo pools)
or ``worker_process_init`` (prefork children), beat in ``beat_init``, the CLI before it
submits. :func:`shutdown` flushes what is buffered (registered with ``atexit`` too, and
called from ``worker_process_shutdown``), so the spans of a short-lived process are not
lost.

Sampling is parent-based: a goal's steps follow the decision taken for the goal. New
traces are kept at ``OTEL_TRACES_SAMPLER_ARG``, except client spans without a parent
(the broker's polling, the lease heartbeat's statements), which would each be a trace of
one span and bury the goals' traces.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any, Literal

from opentelemetry import metrics, trace

from shared.settings import get_settings
from shared.telemetry.config import ExportPlan, export_plan

log = logging.getLogger(__name__)

Role = Literal["gateway", "worker", "beat", "cli"]
TRACER_NAME = "taskforce"

_lock = threading.Lock()
_state: dict[str, Any] = {}


def _sampler(ratio: float) -> Any:
    """ParentBased(root = drop parentless client spans, else keep ``ratio`` of them)."""
    from opentelemetry.sdk.trace.sampling import (
        Decision,
        ParentBased,
        Sampler,
        SamplingResult,
        TraceIdRatioBased,
    )

    class _RootSampler(Sampler):
        """Keeps ``ratio`` of new traces but never one that starts with a client span."""

        def __init__(self) -> None:
            self._ratio = TraceIdRatioBased(ratio)

        def should_sample(self, parent_context: Any, trace_id: int, name: str,
                          kind: Any = None, attributes: Any = None,
                          links: Sequence[Any] | None = None, trace_state: Any = None,
                          ) -> SamplingResult:
            if kind == trace.SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            return self._ratio.should_sample(parent_context, trace_id, name, kind,
                                             attributes, links, trace_state)

        def get_description(self) -> str:
            return f"TaskforceRoot({ratio})"

    return ParentBased(root=_RootSampler())


def _redacting(inner: Any) -> Any:
    """A span processor that removes exception messages and stack traces (which may
    quote SQL parameters, prompts or URLs) before ``inner`` exports a span: an
    ``exception`` event keeps only ``exception.type``, a status description only the
    text before its first colon (the exception's class, as the instrumentations write
    ``"Type: message"``)."""
    from opentelemetry.sdk.trace import Event, SpanProcessor
    from opentelemetry.trace import Status

    class _Redacting(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            inner.on_start(span, parent_context=parent_context)

        def on_end(self, span: Any) -> None:
            status = span.status
            if status.description or any(e.name == "exception" for e in span.events):
                # The SDK has no hook to edit an ended span: its two private fields are
                # rewritten here (checked against opentelemetry-sdk 1.45, pinned).
                span._events = [
                    Event("exception", {"exception.type": str(
                        e.attributes.get("exception.type", ""))}, e.timestamp)
                    if e.name == "exception" else e for e in span.events]
                description = (status.description or "").split(":", 1)[0] or None
                span._status = Status(status.status_code, description)
            inner.on_end(span)

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return inner.force_flush(timeout_millis)

    return _Redacting()


def _resource(plan: ExportPlan, role: str) -> Any:
    from opentelemetry.sdk.resources import Resource

    return Resource.create({
        "service.name": plan.service_name,
        "service.instance.id": f"{socket.gethostname()}-{os.getpid()}",
        "taskforce.process.role": role,
    })


def _tracer_provider(plan: ExportPlan, resource: Any) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(resource=resource, sampler=_sampler(plan.sample_ratio))
    if plan.traces == "console":
        exporter: Any = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=plan.traces_endpoint)
    provider.add_span_processor(_redacting(BatchSpanProcessor(exporter)))
    return provider


def _meter_provider(plan: ExportPlan, resource: Any, role: str) -> Any:
    """A meter provider pushing OTLP (when configured) and, in the gateway, read by
    ``/metrics`` through a registry of its own; None when neither applies."""
    from opentelemetry.sdk.metrics import MeterProvider

    readers = []
    if plan.metrics_endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers.append(PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=plan.metrics_endpoint)))
    if role == "gateway":
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry(auto_describe=True)
        readers.append(PrometheusMetricReader(registry=registry))
        _state["registry"] = registry
    if not readers:
        return None
    return MeterProvider(resource=resource, metric_readers=readers)


def _instrument_libraries(disabled: frozenset[str]) -> None:
    """Celery (publish and run spans, context in message headers), Redis and httpx, less
    the ``disabled`` ones. SQLAlchemy engines are instrumented one by one
    (:func:`instrument_engine`)."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    for name, instrumentor in (("celery", CeleryInstrumentor()), ("redis", RedisInstrumentor()),
                               ("httpx", HTTPXClientInstrumentor())):
        if name not in disabled and not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def instrumentation_enabled(name: str) -> bool:
    """True when tracing is on and ``name`` (``fastapi``, ``sqlalchemy``...) is not in
    ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``."""
    plan = _state.get("plan")
    return tracing_enabled() and plan is not None and name not in plan.disabled


def setup(role: Role) -> ExportPlan:
    """Install this process's tracer and meter providers and instrumentations (once per
    process; a forked child sets up its own).

    With nothing configured to export (see :mod:`shared.telemetry.config`) nothing is
    installed, except the gateway's meter provider that ``/metrics`` reads.

    Args:
        role: What this process is: ``gateway``, ``worker``, ``beat`` or ``cli``.

    Returns:
        The export plan in effect.

    Raises:
        ConfigurationError: An unsupported exporter or OTLP protocol is configured.
    """
    with _lock:
        if _state.get("pid") == os.getpid():
            return _state["plan"]
        plan = export_plan(get_settings(), role)
        resource = _resource(plan, role)
        _state.clear()
        _state.update(pid=os.getpid(), plan=plan, role=role, tracing=False, metrics=False)
        if plan.traces:
            provider = _tracer_provider(plan, resource)
            trace.set_tracer_provider(provider)
            _state.update(tracer_provider=provider, tracing=True,
                          tracer=provider.get_tracer(TRACER_NAME))
            _instrument_libraries(plan.disabled)
        meter_provider = _meter_provider(plan, resource, role)
        if meter_provider is not None:
            metrics.set_meter_provider(meter_provider)
            _state.update(meter_provider=meter_provider,
                          metrics=plan.metrics_endpoint is not None)
        if plan.traces or plan.metrics_endpoint:
            atexit.register(shutdown)
            log.info("telemetry for %s: traces %s (%s), metrics %s", plan.service_name,
                     plan.traces, plan.traces_endpoint, plan.metrics_endpoint)
        return plan


def shutdown() -> None:
    """Flush and stop this process's providers (idempotent; never raises)."""
    with _lock:
        if _state.get("pid") != os.getpid():
            return
        for key in ("tracer_provider", "meter_provider"):
            provider = _state.pop(key, None)
            if provider is None:
                continue
            try:
                provider.force_flush()
                provider.shutdown()
            except Exception:
                log.warning("flushing telemetry failed", exc_info=True)
        _state["tracing"] = False


def force_flush() -> None:
    """Export what this process has buffered now (a worker after a goal, tests)."""
    for key in ("tracer_provider", "meter_provider"):
        provider = _state.get(key)
        if provider is not None and _state.get("pid") == os.getpid():
            provider.force_flush()


def capture_content() -> bool:
    """True when LLM spans record prompts and answers (off unless the operator turns
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` on)."""
    plan = _state.get("plan")
    return bool(plan and plan.capture_content and tracing_enabled())


def tracing_enabled() -> bool:
    """True when this process records and exports spans."""
    return bool(_state.get("tracing")) and _state.get("pid") == os.getpid()


def metrics_enabled() -> bool:
    """True when this process pushes metrics over OTLP."""
    return bool(_state.get("metrics")) and _state.get("pid") == os.getpid()


def prometheus_registry() -> Any:
    """The gateway's Prometheus registry (``/metrics``), or None before :func:`setup`."""
    return _state.get("registry") if _state.get("pid") == os.getpid() else None


def tracer() -> trace.Tracer:
    """Taskforce's tracer (a no-op one until :func:`setup` installs a provider)."""
    made = _state.get("tracer")
    return made if made is not None else trace.get_tracer(TRACER_NAME)


def meter() -> metrics.Meter:
    """Taskforce's meter (a no-op one until :func:`setup` installs a provider)."""
    return metrics.get_meter(TRACER_NAME)


def instrument_engine(engine: Any) -> None:
    """Trace the statements of a SQLAlchemy ``engine`` (when tracing is on): one client
    span per statement, the SQL text with its placeholders (never the bound values)."""
    if not instrumentation_enabled("sqlalchemy"):
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    noop_usage = metrics.NoOpMeter("sqlalchemy").create_up_down_counter("db.client.connections")
    EngineTracer(trace.get_tracer("opentelemetry.instrumentation.sqlalchemy"), engine,
                 noop_usage)
