"""The feed never skips: a transaction that took a low position and commits after later ones
holds the feed back while it is open, and is served once it commits, before them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest_asyncio

import projections.orders
from orders.create_order import OrderCreator
from orders.eventstore import EventStore
from orders.eventstore.pool import connect
from orders.publishing.cloudevents import event_id
from tests.api.helpers import new_key, order_body, post_order
from tests.feed.feed import read_page, read_to_the_end
from tests.projections.support import ORDER_REQUEST


@pytest_asyncio.fixture(loop_scope="session")
async def raw_conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(database_url)
    yield conn
    await conn.close()


async def test_a_late_commit_with_a_low_position_is_served_not_skipped(
    client: httpx.AsyncClient, raw_conn: asyncpg.Connection
) -> None:
    _, caught_up = await read_to_the_end(client)
    held_key = new_key()
    held = raw_conn.transaction()
    await held.start()
    try:
        # The order's create, in a transaction of its own left open: its event takes the
        # next position and a transaction id older than anything after it.
        creator = OrderCreator(EventStore(raw_conn), inline_projection=projections.orders.INLINE)
        await creator.create(held_key, ORDER_REQUEST)
        held_position: int = await raw_conn.fetchval(
            "SELECT position FROM events WHERE stream_id = $1", held_key
        )
        later = [await post_order(client, order_body(), new_key()) for _ in range(3)]
        assert all(answer.status_code == 201 for answer in later)

        while_open = await read_page(client, f"?after={caught_up.cursor}")
        assert while_open.events == []
        assert while_open.cursor == caught_up.cursor
    finally:
        await held.commit()

    served, _ = await read_to_the_end(client, caught_up.next)

    ids = [event["id"] for event in served]
    assert ids[0] == event_id(held_key, 1)
    later_ids = [answer.json()["order_id"] for answer in later]
    assert [event["subject"] for event in served[1:]] == later_ids
    later_positions = await raw_conn.fetch(
        "SELECT position FROM events WHERE data->>'order_id' = ANY($1::text[])", later_ids
    )
    assert all(row["position"] > held_position for row in later_positions)
