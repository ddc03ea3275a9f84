"""Data the scenarios need: orders created through the API, and a million more loaded in bulk."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final
from uuid import uuid4

import httpx
import msgspec

import projections.orders
from bench.scenarios import BODY, ORDERS
from orders.create_order import EventMetadata
from orders.domain.commands import CreateOrder, OrderRequest
from orders.domain.decide import decide
from orders.domain.events import encode_event
from orders.eventstore.pool import connect

# Events shaped exactly like a create's (the template's fields, a new order id and key each),
# projected by the real projection SQL in the same statement, as an inline append does.
_BULK_EVENTS: Final = """
WITH new_events AS (
    INSERT INTO events (stream_id, version, event_type, data, metadata)
    SELECT k.key, 1, 'OrderCreated',
           $2::jsonb || jsonb_build_object('order_id', gen_random_uuid(), 'request_id', k.key),
           $3::jsonb || jsonb_build_object('request_id', k.key, 'causation_id', k.key)
    FROM generate_series($4::bigint, $5::bigint) AS g, LATERAL (SELECT $1::text || g AS key) AS k
    RETURNING position, stream_id, version, event_type, data, metadata, tx_id, recorded_at
)"""
BULK_LOAD: Final = "".join([_BULK_EVENTS, projections.orders.INLINE, "\nSELECT 1"])
BATCH: Final = 100_000


def order_created_documents() -> tuple[bytes, bytes]:
    """The event data and metadata that creating bench's order body records."""
    request = msgspec.json.decode(BODY, type=OrderRequest)
    command = CreateOrder.from_request("bench-key", request)
    event = decide(command, order_id=uuid4(), now=datetime.now(UTC))
    metadata = EventMetadata("bench-key", event.fingerprint, causation_id="bench-key")
    return encode_event(event), msgspec.json.encode(metadata)


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


async def order_count(url: str) -> int:
    """The number of order rows, counted (not the count the API reads)."""
    conn = await connect(url, application_name="bench")
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM orders")
    finally:
        await conn.close()
    return count


async def bulk_load(url: str, orders: int, report: bool = True) -> float:
    """Append and project `orders` OrderCreated events in batches; return the seconds taken."""
    data, metadata = order_created_documents()
    prefix = f"bulk-{uuid4().hex[:12]}-"
    started = time.perf_counter()
    conn = await connect(url, application_name="bench-load")
    try:
        for first in range(1, orders + 1, BATCH):
            last = min(first + BATCH - 1, orders)
            await conn.execute(BULK_LOAD, prefix, data, metadata, first, last)
            if report:
                print(
                    f"  loaded {last:,} orders in {time.perf_counter() - started:.0f} s", flush=True
                )
        # Later measurements should not pay for this load's checkpoint or statistics.
        await conn.execute("CHECKPOINT")
        await conn.execute("ANALYZE events, orders, order_counts")
    finally:
        await conn.close()
    return time.perf_counter() - started
