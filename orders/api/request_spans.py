"""A server span for each request, continuing the caller's trace when it sends a `traceparent`.

Installed only when tracing is on (see orders/tracing.py), as the outermost of our middlewares:
its span then covers them all and is current whenever the request log line is written (for a
request that raised, after the inner middlewares have unwound), which is how the line gets its
trace id.
"""

from __future__ import annotations

from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.types.asgi_types import RawHeaders
from opentelemetry.propagate import extract
from opentelemetry.propagators.textmap import Getter
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.semconv.attributes.url_attributes import URL_PATH, URL_SCHEME
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from orders.api.rendering import REPLAYED_HEADER

UNTRACED: Final = "untraced"
"""A route handler `opt` key: probes and scrapes, which would drown the traces that matter."""

REPLAYED_ATTRIBUTE: Final = "orders.replayed"
"""Whether the answer was an outcome already recorded (the `Idempotent-Replayed` header)."""

_REPLAYED_HEADER: Final = REPLAYED_HEADER.lower().encode()


class _HeaderGetter(Getter[RawHeaders]):
    """Reads propagation headers (`traceparent`, `tracestate`, `baggage`) from ASGI headers."""

    def get(self, carrier: RawHeaders, key: str) -> list[str] | None:
        name = key.lower().encode()
        values = [value.decode("latin-1") for header, value in carrier if header == name]
        return values or None

    def keys(self, carrier: RawHeaders) -> list[str]:
        return [header.decode("latin-1") for header, _ in carrier]


_HEADERS: Final = _HeaderGetter()


class RequestSpanMiddleware:
    """Spans named `METHOD /route/template`, with the HTTP semantic conventions' attributes,
    the status (5xx is an error; 4xx is the client's) and whether the answer was replayed."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self._tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["route_handler"].opt.get(UNTRACED):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        route = scope["path_template"]
        attributes = {
            HTTP_REQUEST_METHOD: method,
            HTTP_ROUTE: route,
            URL_PATH: scope["path"],
            URL_SCHEME: scope["scheme"],
        }
        with self._tracer.start_as_current_span(
            f"{method} {route}",
            context=extract(scope["headers"], getter=_HEADERS),
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:

            async def record_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    span.set_attribute(HTTP_RESPONSE_STATUS_CODE, status)
                    if status >= 500:
                        span.set_status(StatusCode.ERROR)
                        span.set_attribute(ERROR_TYPE, str(status))
                    for name, value in message.get("headers", ()):
                        if name.lower() == _REPLAYED_HEADER:
                            span.set_attribute(REPLAYED_ATTRIBUTE, value == b"true")
                await send(message)

            await self.app(scope, receive, record_status)
