"""The settings of traces and metrics: OpenTelemetry's standard ``OTEL_*`` variables that
Taskforce reads itself, and the token of the gateway's ``/metrics`` endpoint.

A base class of :class:`shared.settings.Settings` (read through
:func:`shared.settings.get_settings`, never on its own). Every field is the environment
variable of the same name in upper case. The OpenTelemetry SDK reads the other standard
variables itself (``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_EXPORTER_OTLP_TIMEOUT``,
``OTEL_BSP_*``, ``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_RESOURCE_ATTRIBUTES``); their
names and meanings are the OpenTelemetry specification's ("SDK environment variables").
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings


class TelemetrySettings(BaseSettings):
    """Where traces and metrics go. With none of these set nothing is exported, no
    instrumentation is installed and the processes run exactly as without tracing.

    Attributes:
        otel_sdk_disabled: ``OTEL_SDK_DISABLED=true`` turns every exporter off, whatever
            else is set.
        otel_service_name: ``service.name`` of every process; None: ``taskforce-<role>``
            (``taskforce-gateway``, ``taskforce-worker``, ``taskforce-beat``,
            ``taskforce-cli``). The role is also the resource attribute
            ``taskforce.process.role``.
        otel_exporter_otlp_endpoint: Base URL of an OTLP/HTTP receiver (a collector,
            ``http://127.0.0.1:4318``); traces go to ``<it>/v1/traces`` and metrics to
            ``<it>/v1/metrics``. Setting it turns traces and metrics on.
        otel_exporter_otlp_traces_endpoint: Full URL for traces only (overrides the base).
        otel_exporter_otlp_metrics_endpoint: Full URL for metrics only (overrides the base).
        otel_exporter_otlp_protocol: Only ``http/protobuf`` is shipped (port 4318 on a
            collector); another value is refused when a process starts.
        otel_traces_exporter: ``otlp`` (the default once an endpoint is set),
            ``console`` (spans printed on stdout, for debugging) or ``none``.
        otel_metrics_exporter: ``otlp`` (the default once an endpoint is set) or
            ``none``. The gateway's ``/metrics`` works either way.
        otel_python_disabled_instrumentations: Instrumentations not to install,
            comma-separated, among ``celery``, ``redis``, ``httpx``, ``sqlalchemy`` and
            ``fastapi`` (the variable OpenTelemetry's Python auto-instrumentation reads).
            Without ``celery`` a goal's trace stops at each message.
        otel_traces_sampler_arg: Fraction of new traces (goals, requests) kept, 0 to 1;
            a goal's steps follow its decision (parent-based sampling).
        otel_instrumentation_genai_capture_message_content: True records the prompt and
            the answer of every LLM call on its span (``gen_ai.input.messages``,
            ``gen_ai.output.messages``). Off by default: prompts hold tenants' data.
        metrics_token: A bearer token that may read ``GET /metrics`` besides API keys
            with the ``metrics:read`` scope (for a Prometheus scraper). Secret.
    """

    otel_sdk_disabled: bool = False
    otel_service_name: str | None = None
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_exporter_otlp_metrics_endpoint: str | None = None
    otel_exporter_otlp_protocol: str = "http/protobuf"
    otel_traces_exporter: str | None = None
    otel_metrics_exporter: str | None = None
    otel_python_disabled_instrumentations: str = ""
    otel_traces_sampler_arg: float = Field(default=1.0, ge=0, le=1)
    otel_instrumentation_genai_capture_message_content: bool = False
    metrics_token: SecretStr | None = None
