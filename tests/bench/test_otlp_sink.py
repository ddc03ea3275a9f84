"""The benchmark's stand-in collector counts what an OTLP/HTTP exporter sends it."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from bench.otlp_sink import TRACES_PATH, otlp_sink


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_the_sink_counts_every_exported_span(compression: Compression) -> None:
    with otlp_sink() as sink:
        exporter = OTLPSpanExporter(endpoint=sink.endpoint + TRACES_PATH, compression=compression)
        provider = TracerProvider(resource=Resource.create({"service.name": "sunk"}))
        provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=100))
        tracer = provider.get_tracer("test")
        for _ in range(250):
            with tracer.start_as_current_span("work"):
                pass
        provider.shutdown()

    assert sink.spans == 250
    assert sink.exports >= 3
    assert sink.service_names == {"sunk"}
