"""Every table and index says why it exists (migration 0006), keeps saying so after a rebuild,
and every index of the service's tables serves one of the service's statements: an index no
statement uses is a write per create for nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any, Final

import asyncpg

import projections.orders
from orders import readmodel
from orders.eventstore import START
from orders.eventstore import sql as store_sql
from projections import sql as projection_sql
from projections.rebuild import rebuild

_UNEXPLAINED: Final = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'i')
  AND obj_description(c.oid, 'pg_class') IS NULL
ORDER BY c.relname
"""

# The migration ledgers are left out: a handful of rows the migrator reads whole; their keys
# only keep a version from being recorded twice.
_INDEXES: Final = """
SELECT i.relname FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
WHERE t.relnamespace = current_schema()::regnamespace
  AND NOT starts_with(t.relname, 'schema_migrations')
ORDER BY i.relname
"""

# Each statement with arguments of the kinds the service passes.
STATEMENTS: Final[list[tuple[str, tuple[Any, ...]]]] = [
    (
        store_sql.START_STREAMS.format(then=projections.orders.INLINE),
        (["a-key"], ["OrderCreated"], [b"{}"], [b"{}"], "always"),
    ),
    (store_sql.ENSURE_REPLICATED, ("always",)),
    (store_sql.READ_STREAM, ("a-key",)),
    (store_sql.READ_ALL, (START.tx_id, START.position, 100)),
    (projection_sql.CAUGHT_UP, (projections.orders.NAME, None)),
    (projection_sql.CHECKPOINT, (projections.orders.NAME,)),
    (readmodel.GET_ORDER, ("alice", uuid.uuid4())),
    (readmodel.LIST_ORDERS, ("alice", 0, 50)),
    (readmodel.LIST_ORDERS_OF_ANYONE, (0, 50)),
    (readmodel.LIST_ORDERS_IN_STATUS, ("alice", 0, 50, "paid")),
    (readmodel.LIST_ORDERS_OF_ANYONE_IN_STATUS, (0, 50, "paid")),
    (readmodel.ORDER_EVENTS, ([uuid.uuid4()],)),
    (readmodel.ORDER_EVENTS_OF_ONE, (uuid.uuid4(),)),
    (
        store_sql.APPEND_EACH.format(then=projections.orders.INLINE),
        (["a-key"], [1], ["OrderPaid"], [b"{}"], [b"{}"]),
    ),
    (store_sql.STREAM_VERSIONS, (["a-key"],)),
    (
        store_sql.APPEND.format(then=projections.orders.INLINE),
        ("a-key", 1, ["OrderPaid"], [b"{}"], [b"{}"]),
    ),
    (store_sql.STREAM_VERSION, ("a-key",)),
    (readmodel.COUNT_ORDERS, ("alice",)),
]


def indexes_in(plan: Any) -> Iterator[str]:
    """The indexes an EXPLAIN (FORMAT JSON) plan scans or arbitrates conflicts on."""
    if isinstance(plan, dict):
        if "Index Name" in plan:
            yield plan["Index Name"]
        yield from plan.get("Conflict Arbiter Indexes", [])
        for value in plan.values():
            yield from indexes_in(value)
    elif isinstance(plan, list):
        for item in plan:
            yield from indexes_in(item)


async def test_every_table_and_index_says_why_it_exists(pool: asyncpg.Pool) -> None:
    assert [row[0] for row in await pool.fetch(_UNEXPLAINED)] == []


async def test_every_index_serves_a_statement_of_the_service(pool: asyncpg.Pool) -> None:
    used: set[str] = set()
    async with pool.acquire() as conn, conn.transaction():
        # The tables are nearly empty, where a sequential scan is always cheapest: planned as
        # for a store of any size, each statement shows the index it relies on.
        await conn.execute("SET LOCAL enable_seqscan = off")
        for statement, arguments in STATEMENTS:
            plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {statement}", *arguments)
            used.update(indexes_in(json.loads(plan)))
    indexes = {row[0] for row in await pool.fetch(_INDEXES)}
    assert indexes - used == set()


async def test_a_rebuild_keeps_every_reason(database_url: str, pool: asyncpg.Pool) -> None:
    await rebuild(database_url, batch_size=100)

    assert [row[0] for row in await pool.fetch(_UNEXPLAINED)] == []
