"""Prometheus metrics and the one-line-per-request JSON log."""

from __future__ import annotations

import logging
import time
from typing import Final

from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter

from orders.create_order import Outcome
from orders.domain.events import OrderCreated

log = logging.getLogger("orders.requests")

PROMETHEUS: Final = PrometheusConfig(
    app_name="orders",
    prefix="orders_http",
    group_path=True,
    exclude=["/metrics"],
    buckets=[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
)


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False


ORDERS_CREATED = Counter("orders_created_total", "Orders created (first answers only)")
ORDERS_REJECTED = Counter("orders_rejected_total", "Orders rejected by a business rule")
REPLAYS = Counter("orders_replays_total", "Requests answered with an outcome already recorded")
KEY_REUSE_CONFLICTS = Counter(
    "orders_key_reuse_conflicts_total", "Requests whose key belonged to another payload"
)


def count_outcome(outcome: Outcome) -> None:
    if outcome.replayed:
        REPLAYS.inc()
    elif isinstance(outcome.event, OrderCreated):
        ORDERS_CREATED.inc()
    else:
        ORDERS_REJECTED.inc()


_KEY_HEADERS: Final = (b"idempotency-key", b"x-request-id")


class RequestLogMiddleware:
    """Logs method, route template, status, duration and the idempotency key of each request
    (never the body, never other headers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "route": scope.get("path_template", "unmatched"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "idempotency_key": _key(scope),
                },
            )


def _key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name in _KEY_HEADERS:
            # Bounded and decoded leniently: a hostile header must not break the log line.
            return value[:255].decode("ascii", "replace")
    return None
