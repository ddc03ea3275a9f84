"""Data the scenarios need: orders created through the API, and a million more loaded in bulk."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final
from uuid import uuid4

import httpx
import msgspec

import projections.orders
from bench.scenarios import BODY, ORDERS, PAY_BODY, pay_path
from orders.create_order import OrderCreator
from orders.domain.commands import CreateOrder, OrderRequest
from orders.domain.decide import decide
from orders.domain.events import encode_event
from orders.eventstore import EventStore
from orders.eventstore.pool import connect, create_pool

# Copies of a recorded order (the template: its stream's first event), each under
# a new random-UUID key (the stream id of an anonymous caller's key) and a new order id, and
# projected by the real inline projection in the same statement, as an inline append does.
# Keys are drawn in their own CTE: a volatile function there runs once per row.
_BULK_EVENTS: Final = """
WITH template AS (
    SELECT event_type, data FROM events WHERE stream_id = $1 AND version = 1
), keys AS (
    SELECT gen_random_uuid()::text AS key FROM generate_series(1, $2::bigint)
), new_events AS (
    INSERT INTO events (stream_id, version, event_type, data)
    SELECT k.key, 1, t.event_type,
           t.data || jsonb_build_object('order_id', gen_random_uuid(), 'request_id', k.key)
    FROM template t, keys k
    RETURNING position, stream_id, version, event_type, data, metadata, tx_id, recorded_at
)"""
BULK_LOAD: Final = "".join([_BULK_EVENTS, projections.orders.INLINE, "\nSELECT 1"])
BATCH: Final = 100_000


def order_created_data() -> bytes:
    """The event data that creating bench's order body records (with no metadata, as the
    service records it)."""
    request = msgspec.json.decode(BODY, type=OrderRequest)
    command = CreateOrder.from_request("bench-key", request)
    event = decide(command, order_id=uuid4(), now=datetime.now(UTC))
    return encode_event(event)


async def create_orders(
    base_url: str,
    keys: list[str],
    concurrency: int = 16,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Create one order per key through the API, with `headers` added (also warms the service
    up)."""
    gate = asyncio.Semaphore(concurrency)
    headers = {"Content-Type": "application/json", **(headers or {})}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def create(key: str) -> None:
            async with gate:
                answer = await client.post(
                    ORDERS, content=BODY, headers={**headers, "Idempotency-Key": key}
                )
                answer.raise_for_status()

        await asyncio.gather(*(create(key) for key in keys))


async def order_paths(url: str, limit: int) -> list[str]:
    """GET paths of up to `limit` existing orders."""
    conn = await connect(url, application_name="bench")
    try:
        rows = await conn.fetch("SELECT order_id FROM orders LIMIT $1", limit)
    finally:
        await conn.close()
    return [f"{ORDERS}/{row['order_id']}" for row in rows]


async def paid_order(base_url: str, key: str) -> str:
    """Create an order through the API and pay it with `key`; return its pay path (for the
    pay's replays)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        created = await client.post(
            ORDERS,
            content=BODY,
            headers={"Content-Type": "application/json", "Idempotency-Key": f"{key}-order"},
        )
        created.raise_for_status()
        path = pay_path(created.json()["order_id"])
        paid = await client.post(
            path,
            content=PAY_BODY,
            headers={"Content-Type": "application/json", "Idempotency-Key": key},
        )
        paid.raise_for_status()
    return path


async def payable_orders(url: str, orders: int) -> list[str]:
    """Pay paths of `orders` new orders, each in status created: bulk-loaded (an anonymous
    caller's, whose total is ORDER_TOTAL), then read back newest first."""
    await bulk_load(url, orders, report=False)
    conn = await connect(url, application_name="bench")
    try:
        rows = await conn.fetch(
            "SELECT order_id FROM orders WHERE status = 'created' ORDER BY position DESC LIMIT $1",
            orders,
        )
    finally:
        await conn.close()
    return [pay_path(str(row["order_id"])) for row in rows]


async def order_count(url: str) -> int:
    """The number of order rows, counted (not the count the API reads)."""
    conn = await connect(url, application_name="bench")
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM orders")
    finally:
        await conn.close()
    return count


async def record_order(url: str) -> str:
    """Create one order through the service's own create path (its OrderCreator, store and
    inline projection, without HTTP); return its key."""
    key = f"recorded-{uuid4()}"
    pool = await create_pool(url, size=1)
    try:
        creator = OrderCreator(EventStore(pool), inline_projection=projections.orders.INLINE)
        await creator.create(key, msgspec.json.decode(BODY, type=OrderRequest))
    finally:
        await pool.close()
    return key


async def bulk_load(url: str, orders: int, report: bool = True, batch_size: int = BATCH) -> float:
    """Append and project `orders` OrderCreated events: one recorded by `record_order`, then
    copies of it (BULK_LOAD) in batches, on one connection per core (a backend uses one); then
    vacuum and checkpoint, so that neither autovacuum nor the writes they leave behind land in the
    middle of a later measurement.
    Returns the seconds taken."""
    started = time.perf_counter()
    if orders <= 0:
        return 0.0
    template = await record_order(url)
    batches = [min(batch_size, orders - done) for done in range(1, orders, batch_size)]
    loaders = min(os.cpu_count() or 1, len(batches)) or 1
    loaded = 1

    async def load(share: list[int]) -> None:
        nonlocal loaded
        conn = await connect(url, application_name="bench-load")
        try:
            for batch in share:
                await conn.execute(BULK_LOAD, template, batch)
                loaded += batch
                if report:
                    seconds = time.perf_counter() - started
                    print(f"  loaded {loaded:,} orders in {seconds:.0f} s", flush=True)
        finally:
            await conn.close()

    await asyncio.gather(*(load(batches[i::loaders]) for i in range(loaders)))
    conn = await connect(url, application_name="bench-load")
    try:
        # Later measurements should not pay for this load's vacuum, statistics or checkpoint.
        # The checkpoint comes last: the vacuum dirties every page it marks all-visible, and
        # left to the background those writes compete with the measured commits' WAL flushes.
        await conn.execute("VACUUM (ANALYZE) events, orders")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return time.perf_counter() - started
