"""What a create records: one event that holds each fact of the order once."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from orders.create_order import OrderCreator
from orders.domain.events import OrderCreated, decode_event
from orders.domain.streams import order_stream_id
from orders.eventstore import EventStore
from tests.projections.support import ORDER_REQUEST


async def test_a_create_records_its_facts_in_the_event_data_and_nothing_beside(
    pool: asyncpg.Pool,
) -> None:
    key = f"facts-{uuid.uuid4()}"
    outcome = await OrderCreator(EventStore(pool)).create(key, ORDER_REQUEST, "alice")

    row = await pool.fetchrow(
        "SELECT event_type, data, metadata FROM events WHERE stream_id = $1",
        order_stream_id("alice", key),
    )
    assert row is not None
    event = decode_event(row["data"])
    assert isinstance(event, OrderCreated)
    assert event == outcome.event
    assert (event.request_id, row["event_type"]) == (key, "OrderCreated")
    assert msgspec.json.decode(row["metadata"]) == {}
