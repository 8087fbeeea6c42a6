"""A loopback OTLP/HTTP receiver: the local collector of ``taskforce bench overhead``'s
tracing run and of the telemetry tests.

It accepts ``POST /v1/traces`` and ``POST /v1/metrics`` in OTLP/protobuf (gzip or not),
answers 200 as a collector would, and keeps what it received, decoded with
``opentelemetry-proto``: spans with their trace and parent ids, service name and
attributes, and metric data points with their attributes. It never forwards anything.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY_BYTES = 64 * 1024 * 1024  # larger exports are refused (413)


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as received: ids in lowercase hex, attributes as Python values."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    service: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    links: list[str]
    status_code: int
    scope: str
    instance: str = ""
    status_message: str = ""


@dataclass(frozen=True)
class ReceivedPoint:
    """One metric data point: the metric's name, attributes and value (a sum or gauge's
    value, a histogram's count and sum)."""

    metric: str
    service: str
    attributes: dict[str, Any]
    value: float | None = None
    count: int | None = None
    total: float | None = None


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


@dataclass
class OtlpSink:
    """What the receiver got so far (thread-safe), and its address once started."""

    decode: bool = True
    keep: bool = True
    url: str = ""
    requests: int = 0
    bytes_received: int = 0
    span_count: int = 0
    bodies: list[bytes] = field(default_factory=list)
    _spans: list[ReceivedSpan] = field(default_factory=list)
    _points: list[ReceivedPoint] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def spans(self) -> list[ReceivedSpan]:
        """Every span received, in arrival order."""
        with self._lock:
            return list(self._spans)

    def points(self) -> list[ReceivedPoint]:
        """Every metric data point received, in arrival order."""
        with self._lock:
            return list(self._points)

    def receive(self, path: str, body: bytes) -> None:
        """Take one export request's (decompressed) body."""
        with self._lock:
            self.requests += 1
            self.bytes_received += len(body)
            if self.decode and self.keep:
                self.bodies.append(body)
        if not self.decode:
            return
        if path.endswith("/v1/traces"):
            self._take_spans(body)
        elif path.endswith("/v1/metrics"):
            self._take_metrics(body)

    def _take_spans(self, body: bytes) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        request = ExportTraceServiceRequest.FromString(body)
        found = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            service = resource.get("service.name", "")
            instance = resource.get("service.instance.id", "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(ReceivedSpan(
                        trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(), name=span.name,
                        kind=span.kind, service=service,
                        attributes=_attributes(span.attributes),
                        events=[(e.name, _attributes(e.attributes)) for e in span.events],
                        links=[link.trace_id.hex() for link in span.links],
                        status_code=span.status.code, scope=scope_spans.scope.name,
                        instance=instance, status_message=span.status.message))
        with self._lock:
            self.span_count += len(found)
            if self.keep:
                self._spans.extend(found)

    def _take_metrics(self, body: bytes) -> None:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        request = ExportMetricsServiceRequest.FromString(body)
        found = []
        for resource_metrics in request.resource_metrics:
            service = _attributes(resource_metrics.resource.attributes).get("service.name", "")
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    for point in getattr(metric, kind).data_points:
                        attrs = _attributes(point.attributes)
                        if kind == "histogram":
                            found.append(ReceivedPoint(metric.name, service, attrs,
                                                       count=point.count, total=point.sum))
                        else:
                            number = point.WhichOneof("value")
                            found.append(ReceivedPoint(metric.name, service, attrs,
                                                       value=getattr(point, number)))
        with self._lock:
            if self.keep:
                self._points.extend(found)


def _handler(sink: OtlpSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.send_error(413)
                return
            body = self.rfile.read(length)
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            try:
                sink.receive(self.path, body)
            except Exception:
                self.send_error(400)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    return Handler


@contextmanager
def running(*, decode: bool = True, keep: bool = True,
            host: str = "127.0.0.1") -> Iterator[OtlpSink]:
    """Serve an :class:`OtlpSink` on a free loopback port for the ``with`` block;
    ``sink.url`` is the base URL to give as ``OTEL_EXPORTER_OTLP_ENDPOINT``.

    Args:
        decode: Decode what arrives (False: count requests and bytes only).
        keep: Keep what was decoded (False: count spans only, as a benchmark's
            collector does, so that memory stays flat).
        host: Loopback address to bind.
    """
    sink = OtlpSink(decode=decode, keep=keep)
    server = ThreadingHTTPServer((host, 0), _handler(sink))
    server.daemon_threads = True
    sink.url = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="otlp-sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
