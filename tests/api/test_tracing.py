"""Traces: a span per request, its statements as children, the trace id in the request log.

The apps here export to an in-memory exporter through a synchronous processor, so a request's
spans are there as soon as its answer is.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import msgspec
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from bench.otlp_sink import otlp_sink
from orders.api.access_log import LOGGER
from orders.api.app import create_app
from orders.api.request_spans import RequestSpanMiddleware
from orders.settings import Settings
from orders.tracing import Tracing
from tests.api.conftest import running
from tests.api.helpers import ORDERS, new_key, order_body, post_order
from tests.support.asgi import asgi_transport
from tests.support.spans import is_within

SETTINGS = Settings(pool_size=2)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


@asynccontextmanager
async def serving(
    database_url: str, tracing: Tracing | None = None, settings: Settings = SETTINGS
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database_url, tracing)
    transport = asgi_transport(app)
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def in_memory_tracing(exporter: InMemorySpanExporter) -> Tracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def traced(
    database_url: str, exporter: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(database_url, in_memory_tracing(exporter)) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def traced_forgetful(
    database_url: str, exporter: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    """A traced replica that remembers no outcome: it reads every replay back."""
    forgetful = Settings(pool_size=2, replay_cache_size=0)
    async with serving(database_url, in_memory_tracing(exporter), forgetful) as client:
        yield client


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter


def only_server_span(spans: InMemorySpanExporter) -> ReadableSpan:
    [server] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    return server


def children(spans: InMemorySpanExporter, parent: ReadableSpan) -> list[ReadableSpan]:
    return [
        s
        for s in spans.get_finished_spans()
        if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


async def test_a_create_is_a_server_span_with_its_statement_as_a_child(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    answer = await post_order(traced, order_body(), new_key())

    assert answer.status_code == 201
    server = only_server_span(spans)
    assert server.name == f"POST {ORDERS}"
    assert server.attributes is not None
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["http.route"] == ORDERS
    assert server.attributes["http.response.status_code"] == 201
    assert server.attributes["orders.replayed"] is False
    assert server.status.status_code == StatusCode.UNSET
    [statement] = children(spans, server)
    assert statement.kind == SpanKind.CLIENT
    assert statement.context.trace_id == server.context.trace_id
    assert is_within(statement, server)
    # The barrier's one-row SELECT comes first (see sql.START_STREAMS), then the append.
    assert statement.name.startswith("SELECT INSERT events SELECT replication_barrier")
    assert statement.attributes is not None
    assert statement.attributes["db.system.name"] == "postgresql"
    assert statement.attributes["db.query.summary"] == statement.name
    assert "INSERT INTO events" in str(statement.attributes["db.query.text"])
    assert statement.attributes["db.namespace"]


async def test_a_replay_answered_from_memory_has_no_statement_span(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    key = new_key()
    await post_order(traced, order_body(), key)
    spans.clear()

    replay = await post_order(traced, order_body(), key)

    assert replay.headers["Idempotent-Replayed"] == "true"
    server = only_server_span(spans)
    assert server.attributes is not None
    assert server.attributes["orders.replayed"] is True
    assert spans.get_finished_spans() == (server,)


async def test_a_replay_read_back_from_the_store_has_its_statement_span(
    traced: httpx.AsyncClient,
    traced_forgetful: httpx.AsyncClient,
    spans: InMemorySpanExporter,
) -> None:
    key = new_key()
    await post_order(traced, order_body(), key)
    spans.clear()

    replay = await post_order(traced_forgetful, order_body(), key)

    assert replay.headers["Idempotent-Replayed"] == "true"
    server = only_server_span(spans)
    assert server.attributes is not None
    assert server.attributes["orders.replayed"] is True
    assert len(children(spans, server)) == 1


async def test_a_request_continues_the_trace_of_an_incoming_traceparent(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    traceparent = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"

    await traced.get(f"{ORDERS}/count", headers={"traceparent": traceparent})

    server = only_server_span(spans)
    assert server.name == f"GET {ORDERS}/count"
    assert format_trace_id(server.context.trace_id) == TRACE_ID
    assert server.parent is not None
    assert server.parent.is_remote
    assert format_span_id(server.parent.span_id) == PARENT_SPAN_ID
    [statement] = children(spans, server)
    assert statement.name == "SELECT order_counts"


async def test_a_span_is_named_by_the_route_template_not_the_path(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    answer = await traced.get(f"{ORDERS}/8d7f3b8e-2f61-4c1e-9a43-0f6f7d1c2b5a")

    assert answer.status_code == 404
    server = only_server_span(spans)
    assert server.name == f"GET {ORDERS}/{{order_id}}"
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 404
    assert server.status.status_code == StatusCode.UNSET


async def test_probes_and_scrapes_are_not_traced(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    for path in ("/health/live", "/health/ready", f"{ORDERS}/health", "/metrics"):
        assert (await traced.get(path)).status_code == 200

    assert spans.get_finished_spans() == ()


@pytest.fixture
def request_log(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """The request log at INFO, as deployed, captured from stderr."""
    previous = LOGGER.level
    LOGGER.setLevel(logging.INFO)
    capsys.readouterr()
    yield capsys
    LOGGER.setLevel(previous)


def logged_requests(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    lines = [msgspec.json.decode(line) for line in capsys.readouterr().err.splitlines()]
    return [line for line in lines if line.get("msg") == "request"]


async def test_the_request_log_line_carries_the_trace_id(
    database_url: str,
    exporter: InMemorySpanExporter,
    request_log: pytest.CaptureFixture[str],
) -> None:
    traceparent = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
    async with serving(database_url, in_memory_tracing(exporter)) as client:
        await post_order(client, order_body(), new_key(), headers={"traceparent": traceparent})
        await post_order(client, order_body(), new_key())
    # Stopping the app flushed the log.

    inherited, started = logged_requests(request_log)
    assert inherited["trace_id"] == TRACE_ID
    assert isinstance(started["trace_id"], str)
    assert len(started["trace_id"]) == 32
    assert started["trace_id"] != TRACE_ID


async def test_without_an_endpoint_nothing_is_installed_and_no_trace_is_logged(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    request_log: pytest.CaptureFixture[str],
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    app = create_app(SETTINGS, database_url)
    installed = [getattr(middleware, "middleware", middleware) for middleware in app.middleware]
    assert RequestSpanMiddleware not in installed

    async with serving(database_url) as client:
        traceparent = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
        await post_order(client, order_body(), new_key(), headers={"traceparent": traceparent})

    [line] = logged_requests(request_log)
    assert line["trace_id"] is None


async def test_with_an_endpoint_spans_are_exported_over_otlp_http(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with otlp_sink() as sink:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.endpoint)
        async with serving(database_url) as client:
            assert (await post_order(client, order_body(), new_key())).status_code == 201
        # Stopping the app exported what was queued.

    assert sink.spans == 2
    assert sink.service_names == {"orders"}
