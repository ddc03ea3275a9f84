"""Whether requests are traced, and where their spans go: the standard OTEL_* environment.

Tracing is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set
(and OTEL_SDK_DISABLED is not `true`). Spans then leave in batches, from a background thread,
over OTLP/HTTP with protobuf; the SDK reads the rest itself: OTEL_SERVICE_NAME and
OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG), OTEL_EXPORTER_OTLP_(TRACES_)HEADERS,
_TIMEOUT and _COMPRESSION, OTEL_BSP_* and OTEL_PROPAGATORS.

Off, nothing is built: `Tracing.tracer` is None and the composition root installs no
middleware and no statement logger, so a request costs exactly what it did without tracing.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Final

from opentelemetry import trace
from opentelemetry.trace import format_trace_id

from orders.settings import SettingsError

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

ENDPOINT_VARIABLES: Final = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOL_VARIABLES: Final = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
PROTOCOL: Final = "http/protobuf"
DEFAULT_SERVICE_NAME: Final = "orders"
INSTRUMENTATION_NAME: Final = "orders"


def current_trace_id() -> str | None:
    """The id of the trace the running request belongs to (32 hex digits), if any."""
    context = trace.get_current_span().get_span_context()
    return format_trace_id(context.trace_id) if context.is_valid else None


class Tracing:
    """Tracing as the app uses it: a tracer for its spans, or None when tracing is off."""

    def __init__(self, provider: TracerProvider | None) -> None:
        self._provider = provider
        self.tracer = None if provider is None else provider.get_tracer(INSTRUMENTATION_NAME)

    @classmethod
    def from_environment(cls) -> Tracing:
        """On when an OTLP endpoint is configured (see the module docstring); raises
        SettingsError for an exporter protocol other than http/protobuf, which would send
        every span to a port that cannot read it."""
        if not exporting():
            return cls(None)
        # Imported only when tracing is on: the SDK and the exporter (with requests and
        # protobuf) add ~5 MB to each worker.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=_resource())
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider)

    async def shutdown(self) -> None:
        """Export what is still queued (bounded by the exporter's timeout) and stop."""
        if self._provider is not None:
            await asyncio.to_thread(self._provider.shutdown)


def exporting() -> bool:
    """Whether the environment asks for traces (raises SettingsError on a protocol we lack)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if not any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        return False
    for name in PROTOCOL_VARIABLES:
        protocol = os.environ.get(name, "").strip()
        if protocol:
            if protocol != PROTOCOL:
                raise SettingsError(f"{name}={protocol!r}: traces are exported as {PROTOCOL} only")
            break
    return True


def _resource() -> Resource:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    resource = Resource.create()
    # Without OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) the SDK names
    # the service "unknown_service:python"; ours has a name.
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = Resource.create({SERVICE_NAME: DEFAULT_SERVICE_NAME})
    return resource
