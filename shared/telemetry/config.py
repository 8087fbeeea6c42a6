"""What a process exports, decided from the standard ``OTEL_*`` settings
(:class:`shared.settings_telemetry.TelemetrySettings`).

The rule: with no OTLP endpoint and no exporter named, nothing is exported and nothing is
installed. An OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` or a signal's own) turns on
the signals whose exporter is not ``none``; ``OTEL_TRACES_EXPORTER=console`` prints spans
without any endpoint; ``OTEL_SDK_DISABLED=true`` turns everything off.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import ConfigurationError
from shared.settings import Settings

SUPPORTED_PROTOCOL = "http/protobuf"


@dataclass(frozen=True)
class ExportPlan:
    """Where one process sends its telemetry.

    Attributes:
        service_name: ``service.name`` of the process's resource.
        traces: ``otlp``, ``console`` or None (no tracer provider is installed).
        traces_endpoint: Full OTLP/HTTP URL for spans (``.../v1/traces``) when ``otlp``.
        metrics_endpoint: Full OTLP/HTTP URL for metrics, or None (not pushed).
        sample_ratio: Fraction of new traces kept (0 to 1).
        capture_content: Record prompts and answers on LLM spans.
        disabled: Instrumentations not to install (``redis``, ``sqlalchemy``, ...).
    """

    service_name: str
    traces: str | None
    traces_endpoint: str | None
    metrics_endpoint: str | None
    sample_ratio: float
    capture_content: bool
    disabled: frozenset[str] = frozenset()


def _signal_url(base: str | None, specific: str | None, path: str) -> str | None:
    """A signal's URL: its own variable as given, else the base URL plus ``path``."""
    if specific:
        return specific
    if base:
        return base.rstrip("/") + path
    return None


def _exporter(value: str | None, *, allowed: tuple[str, ...], name: str) -> str | None:
    """The exporter a ``OTEL_*_EXPORTER`` variable names (None: not given).

    Raises:
        ConfigurationError: The value is none of ``allowed``.
    """
    if value is None or not value.strip():
        return None
    chosen = value.strip().lower()
    if chosen not in allowed:
        raise ConfigurationError(
            f"{name}={value!r} is not supported (use one of: {', '.join(allowed)})")
    return chosen


def export_plan(settings: Settings, role: str) -> ExportPlan:
    """The :class:`ExportPlan` of a process of ``role`` under ``settings``.

    Args:
        settings: The process's settings.
        role: ``gateway``, ``worker``, ``beat`` or ``cli``.

    Raises:
        ConfigurationError: An exporter or protocol this deployment does not ship.
    """
    service = settings.otel_service_name or f"taskforce-{role}"
    common = {"service_name": service, "sample_ratio": settings.otel_traces_sampler_arg,
              "capture_content": settings.otel_instrumentation_genai_capture_message_content,
              "disabled": frozenset(name.strip().lower() for name in
                                    settings.otel_python_disabled_instrumentations.split(",")
                                    if name.strip())}
    if settings.otel_sdk_disabled:
        return ExportPlan(traces=None, traces_endpoint=None, metrics_endpoint=None, **common)
    traces = _exporter(settings.otel_traces_exporter, allowed=("otlp", "console", "none"),
                       name="OTEL_TRACES_EXPORTER")
    metrics = _exporter(settings.otel_metrics_exporter, allowed=("otlp", "none"),
                        name="OTEL_METRICS_EXPORTER")
    base = settings.otel_exporter_otlp_endpoint
    traces_url = _signal_url(base, settings.otel_exporter_otlp_traces_endpoint, "/v1/traces")
    metrics_url = _signal_url(base, settings.otel_exporter_otlp_metrics_endpoint,
                              "/v1/metrics")
    if (traces_url or metrics_url) and (
            settings.otel_exporter_otlp_protocol.strip().lower() != SUPPORTED_PROTOCOL):
        raise ConfigurationError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={settings.otel_exporter_otlp_protocol!r} is not "
            f"supported: Taskforce ships the {SUPPORTED_PROTOCOL} exporter (a collector's "
            "port 4318)")
    if traces is None:
        traces = "otlp" if traces_url else None
    if traces == "none" or (traces == "otlp" and not traces_url):
        traces = None
    if metrics == "none" or (metrics is None and not metrics_url):
        metrics_url = None
    return ExportPlan(traces=traces, traces_endpoint=traces_url if traces == "otlp" else None,
                      metrics_endpoint=metrics_url, **common)
