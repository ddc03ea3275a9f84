"""A stand-in OpenTelemetry collector for the benchmark: it accepts OTLP/HTTP trace exports,
counts their spans and keeps nothing, so tracing can be measured without a real collector.

    with otlp_sink() as sink:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint}   # for `orders serve`
        ...
        print(sink.spans)

The stdlib's threading HTTP server (HTTP/1.1, so the exporter keeps its connection) in a
daemon thread: the benchmark harness is synchronous, and a thread needs no event loop of its
own. Decoding an export costs the sink a little CPU, as a collector would.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

TRACES_PATH: Final = "/v1/traces"
_EMPTY_RESPONSE: Final = ExportTraceServiceResponse().SerializeToString()


class OtlpSink:
    """What the sink has received so far; `endpoint` is the base URL for
    OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces)."""

    endpoint: str

    def __init__(self) -> None:
        self.exports = 0
        self.spans = 0
        self.service_names: set[str] = set()
        self._lock = threading.Lock()

    def receive(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        spans = 0
        names: set[str] = set()
        for resource_spans in request.resource_spans:
            names.update(
                attribute.value.string_value
                for attribute in resource_spans.resource.attributes
                if attribute.key == "service.name"
            )
            spans += sum(len(scope_spans.spans) for scope_spans in resource_spans.scope_spans)
        with self._lock:
            self.exports += 1
            self.spans += spans
            self.service_names |= names


def _handler(sink: OtlpSink) -> type[BaseHTTPRequestHandler]:
    class ExportHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path != TRACES_PATH:
                self._answer(404, b"")
                return
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            sink.receive(body)
            self._answer(200, _EMPTY_RESPONSE)

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: a line per export would flood the benchmark's output."""

    return ExportHandler


@contextmanager
def otlp_sink(host: str = "127.0.0.1") -> Iterator[OtlpSink]:
    """A sink listening on a free port of `host` until the block ends."""
    sink = OtlpSink()
    server = ThreadingHTTPServer((host, 0), _handler(sink))
    sink.endpoint = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="otlp-sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
