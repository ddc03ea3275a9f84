"""The benchmarks' bulk load writes what the service would have: OrderCreated events shaped
like a recorded one, each its own anonymous stream, and a read model that is their fold."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from bench import seed
from orders.domain.events import OrderCreated, decode_event
from tests.projections.support import assert_read_model_is_the_fold

ORDERS = 250
BATCH = 100
"""Three batches (the first order is recorded, not copied), spread over the loaders."""


async def test_loaded_orders_are_distinct_recorded_orders_and_the_read_model_is_their_fold(
    database_url: str, pool: asyncpg.Pool
) -> None:
    await seed.bulk_load(database_url, ORDERS, report=False, batch_size=BATCH)

    rows = await pool.fetch("SELECT stream_id, version, event_type, data, metadata FROM events")
    assert len(rows) == ORDERS
    events = [decode_event(row["data"]) for row in rows]
    assert all(isinstance(event, OrderCreated) for event in events)
    assert all(row["version"] == 1 and row["event_type"] == "OrderCreated" for row in rows)
    for row, event in zip(rows, events, strict=True):
        assert row["stream_id"] == event.request_id
        assert msgspec.json.decode(row["metadata"]) == {}
    copies = [row["stream_id"] for row in rows if not row["stream_id"].startswith("recorded-")]
    assert len(copies) == ORDERS - 1
    assert all(uuid.UUID(key).version == 4 for key in copies)
    assert len({row["stream_id"] for row in rows}) == ORDERS
    assert len({event.order_id for event in events if isinstance(event, OrderCreated)}) == ORDERS
    assert len(await assert_read_model_is_the_fold(pool)) == ORDERS
