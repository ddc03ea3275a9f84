"""A traced pool's statements: spans inside a traced request, nothing outside one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from orders.eventstore.pool import create_pool
from tests.support.spans import is_within


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def tracer(exporter: InMemorySpanExporter) -> Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def traced_pool(database_url: str, tracer: Tracer) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, size=2, tracer=tracer)
    yield pool
    await pool.close()


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


async def test_a_statement_in_a_traced_request_is_its_child_span(
    traced_pool: asyncpg.Pool, tracer: Tracer, spans: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("request"):
        assert await traced_pool.fetchval("SELECT count(*) FROM events WHERE version = $1", 1) >= 0

    statement, request = spans.get_finished_spans()
    assert statement.name == "SELECT events"
    assert statement.kind == SpanKind.CLIENT
    assert statement.parent is not None
    assert statement.parent.span_id == request.context.span_id
    assert statement.status.status_code == StatusCode.UNSET
    assert is_within(statement, request)


async def test_a_failed_statement_says_why_in_its_span(
    traced_pool: asyncpg.Pool, tracer: Tracer, spans: InMemorySpanExporter
) -> None:
    with (
        tracer.start_as_current_span("request"),
        pytest.raises(asyncpg.DivisionByZeroError),
    ):
        await traced_pool.fetchval("SELECT 1 / $1::integer", 0)

    statement, request = spans.get_finished_spans()
    assert is_within(statement, request)
    assert statement.status.status_code == StatusCode.ERROR
    assert statement.attributes is not None
    assert statement.attributes["db.response.status_code"] == "22012"
    assert statement.attributes["error.type"] == "22012"
    assert [event.name for event in statement.events] == ["exception"]


async def test_a_statement_outside_a_traced_request_makes_no_span(
    traced_pool: asyncpg.Pool, spans: InMemorySpanExporter
) -> None:
    assert await traced_pool.fetchval("SELECT $1::integer", 7) == 7

    assert spans.get_finished_spans() == ()


async def test_a_statement_span_lies_within_the_await_of_its_statement(
    traced_pool: asyncpg.Pool, tracer: Tracer, spans: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("request"):
        before = time.time_ns()
        await traced_pool.fetchval("SELECT pg_sleep(0.01)")
        after = time.time_ns()

    statement, _ = spans.get_finished_spans()
    assert statement.start_time is not None and statement.end_time is not None
    assert before <= statement.start_time < statement.end_time <= after
