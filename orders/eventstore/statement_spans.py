"""A span for each statement a request runs, as a child of the request's span.

Our own few lines rather than opentelemetry-instrumentation-asyncpg: that patches asyncpg's
classes for the whole process (the migrating and listening connections too, and every app a
test process builds, with the tracer of the first), and it names a span by the statement's
first word, which for our statements is `WITH`. Here only the pool's connections are traced,
with the tracer of the app that owns the pool, and a span is named by the statement's query
summary (OpenTelemetry's database conventions: operations and tables in order, such as
`SELECT orders`).

Statements outside a traced request (the append notifier, the projection waiters) make no
span: they would each start a trace of their own, noise without a request to explain.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import asyncpg
from opentelemetry.semconv.attributes.db_attributes import (
    DB_NAMESPACE,
    DB_QUERY_SUMMARY,
    DB_QUERY_TEXT,
    DB_RESPONSE_STATUS_CODE,
    DB_SYSTEM_NAME,
    DbSystemNameValues,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.trace import SpanKind, Tracer, get_current_span
from opentelemetry.util.types import AttributeValue

# Longest summary kept, as the conventions recommend; cut at a word.
MAX_SUMMARY: Final = 255

_IGNORED = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.DOTALL)
_TABLE = r'"?[A-Za-z_][\w.]*+"?'
# An operation keyword, or a table: written after INTO or UPDATE (but not the SET of
# `DO UPDATE SET`), read after FROM or JOIN (but not a function, such as `unnest(...)`).
_SUMMARY_PART = re.compile(
    r"\b(?:(?P<operation>SELECT|INSERT|UPDATE|DELETE|MERGE)"
    rf"|(?:INTO|(?<=UPDATE))\s+(?!SET\b)(?P<written>{_TABLE})"
    rf"|(?:FROM|JOIN)\s+(?P<read>{_TABLE})(?!\s*\())",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=256)
def query_summary(query: str) -> str:
    """The operations and the tables of `query` in the order they appear (a low-cardinality
    name: the statement text without its parameters). Cached: a service has few statements."""
    parts = []
    for part in _SUMMARY_PART.finditer(_IGNORED.sub(" ", query)):
        operation, table = part["operation"], part["written"] or part["read"]
        parts.append(operation.upper() if operation else table.strip('"'))
    summary = " ".join(parts) or DbSystemNameValues.POSTGRESQL.value
    if len(summary) > MAX_SUMMARY:
        summary = summary[: MAX_SUMMARY + 1].rsplit(" ", 1)[0]
    return summary


def connection_attributes(dsn: str) -> dict[str, AttributeValue]:
    """What every span of a pool's connections says about the server: the system, the
    database, and the server's address (a host, or a Unix socket directory)."""
    url = urlsplit(dsn)
    query = parse_qs(url.query)
    attributes: dict[str, AttributeValue] = {DB_SYSTEM_NAME: DbSystemNameValues.POSTGRESQL.value}
    database = url.path.lstrip("/") or query.get("dbname", [""])[0]
    if database:
        attributes[DB_NAMESPACE] = database
    host = url.hostname or query.get("host", [""])[0]
    if host:
        attributes[SERVER_ADDRESS] = host
        attributes[SERVER_PORT] = url.port or int(query.get("port", ["5432"])[0])
    return attributes


def traced_connection_class(tracer: Tracer, dsn: str) -> type[asyncpg.Connection]:
    """A connection class for the pool whose statements (fetch, fetchrow, fetchval and
    execute with arguments: everything the service runs) become client spans."""
    server = connection_attributes(dsn)

    class TracedConnection(asyncpg.Connection):
        # `_execute` is the one method those public ones share (asyncpg 0.30 to 0.32; the
        # pin in pyproject.toml says to check on upgrade).
        async def _execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
            if not get_current_span().is_recording():
                return await super()._execute(query, *args, **kwargs)  # type: ignore[misc]
            summary = query_summary(query)
            attributes = {**server, DB_QUERY_SUMMARY: summary, DB_QUERY_TEXT: query}
            with tracer.start_as_current_span(
                summary, kind=SpanKind.CLIENT, attributes=attributes
            ) as span:
                try:
                    return await super()._execute(query, *args, **kwargs)  # type: ignore[misc]
                except asyncpg.PostgresError as exc:
                    span.set_attribute(DB_RESPONSE_STATUS_CODE, exc.sqlstate)
                    span.set_attribute(ERROR_TYPE, exc.sqlstate)
                    raise
                except Exception as exc:
                    span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
                    raise

    return TracedConnection
