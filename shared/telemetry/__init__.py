"""Traces and metrics with OpenTelemetry: one trace per goal, GenAI spans for LLM calls,
tool call spans, and the fleet's metrics.

Nothing happens at import: each process calls :func:`setup` with its role once it runs
(the gateway at startup, a worker after Celery's pool is ready, beat at ``beat_init``,
the CLI when it submits). With no ``OTEL_*`` exporter configured no SDK provider is
installed and no instrumentation is applied, so every span and instrument below is
OpenTelemetry's no-op and costs next to nothing. The modules:

* :mod:`shared.telemetry.config`: what to export where, from the settings.
* :mod:`shared.telemetry.setup`: providers, exporters, instrumentations, flush.
* :mod:`shared.telemetry.goal_trace`: a goal's trace (started at submission, its W3C
  ``traceparent`` stored on the goal row, resumed by the reconciler and approvals).
* :mod:`shared.telemetry.genai`: spans and metrics of LLM calls and tool calls (the
  OpenTelemetry GenAI semantic conventions).
* :mod:`shared.telemetry.instruments`: Taskforce's own metric instruments.
"""

from __future__ import annotations

from shared.telemetry.setup import (
    Role,
    force_flush,
    instrument_engine,
    meter,
    metrics_enabled,
    prometheus_registry,
    setup,
    shutdown,
    tracer,
    tracing_enabled,
)

__all__ = [
    "Role",
    "force_flush",
    "instrument_engine",
    "meter",
    "metrics_enabled",
    "prometheus_registry",
    "setup",
    "shutdown",
    "tracer",
    "tracing_enabled",
]
