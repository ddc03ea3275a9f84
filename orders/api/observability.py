"""Prometheus metrics and the one-line-per-request JSON log."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any, Final

import asyncpg
from litestar import Response, get
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from orders.api.access_log import AccessLog
from orders.api.request_spans import UNTRACED
from orders.create_order import Outcome
from orders.domain.events import OrderCreated
from orders.eventstore import Batch

REQUESTS = Counter(
    "orders_http_requests_total",
    "HTTP requests by method, route template and status",
    ["method", "path", "status_code"],
)
LATENCY = Histogram(
    "orders_http_request_duration_seconds",
    "HTTP request duration by method and route template",
    ["method", "path"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


@get(
    "/metrics",
    include_in_schema=False,
    media_type=CONTENT_TYPE_LATEST,
    sync_to_thread=False,
    opt={UNTRACED: True},
)
def metrics() -> Response[bytes]:
    """Prometheus exposition; with several workers, the sum over all of them."""
    registry = REGISTRY
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


ORDERS_CREATED = Counter("orders_created_total", "Orders created (first answers only)")
ORDERS_REJECTED = Counter("orders_rejected_total", "Orders rejected by a business rule")
REPLAYS = Counter("orders_replays_total", "Requests answered with an outcome already recorded")
COMMANDS = Counter(
    "orders_commands_total",
    "Lifecycle commands by action (pay, ship, deliver, cancel) and outcome: applied, replayed, "
    "invalid_transition, precondition_failed, amount_mismatch, key_reused, forbidden, "
    "not_found",
    ["action", "outcome"],
)


def count_command(action: str, outcome: str) -> None:
    COMMANDS.labels(action, outcome).inc()


KEY_REUSE_CONFLICTS = Counter(
    "orders_key_reuse_conflicts_total", "Requests whose key belonged to another payload"
)


class PoolUse:
    """How many of this process's database connections serve a request right now, out of how
    many: read from the pools when Prometheus scrapes, so requests pay nothing for it.

    One process only: with `orders serve --workers N`, /metrics sums what the workers wrote to
    PROMETHEUS_MULTIPROC_DIR, and a pool lives in its own worker, so these are absent there.
    Kubernetes runs one worker per pod.
    """

    def __init__(self) -> None:
        self._pools: list[asyncpg.Pool] = []

    def watch(self, pool: asyncpg.Pool) -> None:
        self._pools.append(pool)

    def forget(self, pool: asyncpg.Pool) -> None:
        self._pools.remove(pool)

    def collect(self) -> Iterator[Metric]:
        if not self._pools:
            return
        in_use = GaugeMetricFamily(
            "orders_db_pool_connections_in_use", "Database connections lent out right now"
        )
        in_use.add_metric([], sum(pool.get_size() - pool.get_idle_size() for pool in self._pools))
        size = GaugeMetricFamily(
            "orders_db_pool_connections_max", "Database connections the pool holds at most"
        )
        size.add_metric([], sum(pool.get_max_size() for pool in self._pools))
        yield in_use
        yield size


POOL_USE = PoolUse()
REGISTRY.register(POOL_USE)


GROUP_COMMIT_BATCHES = Histogram(
    "orders_group_commit_batch_size",
    "Creates per append statement (group commit): 1 at low load, growing with the load",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)


LIFECYCLE_GROUP_COMMIT_BATCHES = Histogram(
    "orders_lifecycle_group_commit_batch_size",
    "Lifecycle commands per compare-and-set append statement (group commit): 1 at low load, "
    "growing with the load",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)


def count_batch(batch: Batch) -> None:
    GROUP_COMMIT_BATCHES.observe(batch.size)


def count_lifecycle_batch(batch: Batch) -> None:
    LIFECYCLE_GROUP_COMMIT_BATCHES.observe(batch.size)


def count_outcome(outcome: Outcome) -> None:
    if outcome.replayed:
        REPLAYS.inc()
    elif isinstance(outcome.event, OrderCreated):
        ORDERS_CREATED.inc()
    else:
        ORDERS_REJECTED.inc()


_KEY_HEADERS: Final = (b"idempotency-key", b"x-request-id")


class ObservabilityMiddleware:
    """Per request, in one pass: the request counter, the latency histogram, and one request
    log line with method, route template, status, duration and the idempotency key (never the
    body, never other headers).

    Our own rather than Litestar's Prometheus middleware, which cost ~80 us of CPU per request
    (a quarter of a create): label children are looked up once per (method, route, status).
    """

    def __init__(self, app: ASGIApp, access_log: AccessLog) -> None:
        self.app = app
        self._access_log = access_log
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        recorded = False

        async def record_on_start(message: Message) -> None:
            # Recorded as the answer starts, before the client can see it: a client that reads
            # /metrics right after an answer finds that answer counted.
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                self._record(scope, message["status"], started)
            await send(message)

        try:
            await self.app(scope, receive, record_on_start)
        finally:
            if not recorded:
                self._record(scope, 500, started)

    def _record(self, scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        method = str(scope.get("method"))
        route = scope.get("path_template", "unmatched")
        counter, histogram = self._children(method, route, status)
        counter.inc()
        histogram.observe(elapsed)
        self._access_log.record(method, route, status, elapsed, _key(scope))

    def _children(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series[(method, route, status)] = (
                REQUESTS.labels(method, route, str(status)),
                LATENCY.labels(method, route),
            )
        return series


def _key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name in _KEY_HEADERS:
            # Bounded and decoded leniently: a hostile header must not break the log line.
            return value[:255].decode("ascii", "replace")
    return None
