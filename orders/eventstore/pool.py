"""Connection pools configured the way the store expects."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Final

import asyncpg
from asyncpg.connect_utils import SessionAttribute
from opentelemetry.trace import Tracer

from orders.eventstore.fair_pool import FairPool
from orders.eventstore.statement_spans import StatementSpans

_Init = Callable[[asyncpg.Connection], Coroutine[Any, Any, None]]

# Every connection the service opens writes, so it must reach the primary: whatever the URL
# says, asyncpg tries its hosts in turn and keeps the first that is neither a hot standby nor
# read-only by default (PostgreSQL 14+ reports both when a session starts, so this costs no
# round trip). A primary that fails ends every session on it, and the pool replaces each dead
# connection at its next acquire, through this check: a standby (the old primary restarted as
# one, say) is never written to. With a multi-host URL (`postgresql://u@db1,db2/orders`) the
# pool follows a promotion by itself.
TARGET_SESSION_ATTRS: Final = SessionAttribute.read_write


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb travels as raw JSON bytes in both directions: msgspec encodes and decodes them
    # directly, with no intermediate Python dicts (binary jsonb is a version byte, then text).
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda value: b"\x01" + value,
        decoder=lambda value: value[1:],
        format="binary",
    )
    # The append statement takes jsonb[] parameters, whose codec asyncpg looks up (a catalog
    # query) the first time a statement on the connection uses them: here, once, rather than
    # inside the first request each connection serves.
    await conn.prepare("SELECT $1::jsonb[]")


def _pool_init(dsn: str, tracer: Tracer | None) -> _Init:
    """How the pool prepares each connection it opens: the store's codecs and, with a `tracer`,
    the query logger that makes a traced request's statements its spans. Without one, no
    logger at all: asyncpg then skips timing and reporting each statement."""
    if tracer is None:
        return _init_connection
    statement_spans = StatementSpans(tracer, dsn)

    async def init_traced(conn: asyncpg.Connection) -> None:
        # After the codecs: a connection the pool replaces opens inside some request, and
        # the codecs' type lookups are not that request's statements.
        await _init_connection(conn)
        conn.add_query_logger(statement_spans)

    return init_traced


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's default reset on release (`RESET ALL; UNLISTEN *; ...`), a full round trip
    after every statement that doubled the database work of a create. Pool connections keep
    no session state: nothing takes session locks, LISTENs or SETs on them (whatever needs
    that uses `connect()`); asyncpg still rolls back a transaction left open before this."""


async def create_pool(
    dsn: str,
    *,
    size: int,
    timeout_seconds: float = 5.0,
    lock_timeout_ms: int = 2000,
    application_name: str = "orders",
    tracer: Tracer | None = None,
) -> asyncpg.Pool:
    """A fair pool of `size` connections (see FairPool) where waiting for a connection and each
    statement give up after `timeout_seconds`, and waits on another transaction's row after
    `lock_timeout_ms`. With a `tracer`, a traced request's statements become its spans."""
    pool = await FairPool(
        dsn,
        acquire_timeout=timeout_seconds,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        min_size=size,
        max_size=size,
        init=_pool_init(dsn, tracer),
        reset=_keep_session,
        command_timeout=timeout_seconds,
        timeout=timeout_seconds,
        target_session_attrs=TARGET_SESSION_ATTRS,
        server_settings={
            "application_name": application_name,
            "lock_timeout": str(lock_timeout_ms),
        },
    )
    return pool


async def connect(dsn: str, *, application_name: str = "orders") -> asyncpg.Connection:
    """A single connection to the primary with the store's codecs (for migrations, projectors,
    tools)."""
    conn = await asyncpg.connect(
        dsn,
        server_settings={"application_name": application_name},
        target_session_attrs=TARGET_SESSION_ATTRS,
    )
    await _init_connection(conn)
    return conn
