"""A command finds an order's stream through its row (readmodel.ORDER_EVENTS), with the stream
id spelled in SQL; that spelling is exactly orders.domain.streams.order_stream_id, for any
caller and key."""

from __future__ import annotations

import uuid

import asyncpg
from hypothesis import HealthCheck, example, given, settings

from orders.domain.streams import NAMED_PREFIX, order_stream_id
from orders.readmodel import ORDER_EVENTS
from tests.unit.test_stream_ids import pairs


class _RolledBack(Exception):
    pass


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs)
@example(("a:b", "c"))
@example((f"{NAMED_PREFIX}1:a", "b"))
@example(("\U0001f600x", "k"))
async def test_the_sql_stream_id_is_the_domains(pool: asyncpg.Pool, pair: tuple[str, str]) -> None:
    owner, key = pair
    order_id = uuid.uuid4()
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO events (stream_id, version, event_type, data) "
                    "VALUES ($1, 1, 'OrderCreated', '{}')",
                    order_stream_id(owner, key),
                )
                await conn.execute(
                    "INSERT INTO orders (order_id, request_id, owner, status, products, "
                    "shipping_to, total, created_at, position) "
                    "VALUES ($1, $2, $3, 'created', '[]', 'x', 0, now(), "
                    "(SELECT max(position) FROM events))",
                    order_id,
                    key,
                    owner,
                )
                rows = await conn.fetch(ORDER_EVENTS, [order_id])
                assert [row["stream_id"] for row in rows] == [order_stream_id(owner, key)]
                raise _RolledBack
        except _RolledBack:
            pass
