"""The publisher's replication barrier cancelled with `pg_cancel_backend()`: PostgreSQL ends the
wait with a WARNING and reports success, although the standby does not hold the batch's events.
The publisher must not publish the batch then: it waits for the standby again, and publishes
only once the standby holds the events (tests/failover/test_cancelled_sync_wait.py is the same
for the service's answers)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from pathlib import Path

import asyncpg
import msgspec
import pytest

import projections.orders
from orders.create_order import OrderCreator
from orders.domain.commands import OrderRequest
from orders.eventstore import EventStore, StoreUnavailable
from orders.eventstore.pool import create_pool
from tests.failover.cluster import Template, cluster
from tests.failover.test_cancelled_sync_wait import (
    POLL_SECONDS,
    cancel_once_waiting,
    standby_caught_up,
)
from tests.processes.clients import order_payload
from tests.projections.support import eventually
from tests.publishing.support import (
    Recorder,
    assert_exactly_the_store,
    delivered_all,
    publisher,
    stored_events,
)
from tests.support.broker import Broker

pytestmark = pytest.mark.slow

WAITING_BARRIER = """
SELECT pid, query_start FROM pg_stat_activity
WHERE wait_event = 'SyncRep' AND application_name LIKE 'orders-publish-%'
  AND query LIKE '%pg_logical_emit_message%'
"""
FOUND_WITHIN_SECONDS = 30.0
"""Bounds only a hang: the publisher polls every 0.1 s, and backs off at most a few seconds."""


async def barrier_waiting(admin: asyncpg.Connection, after: datetime | None) -> asyncpg.Record:
    """The publisher's barrier statement waiting for the standby, begun after `after`."""
    async with asyncio.timeout(FOUND_WITHIN_SECONDS):
        while True:
            rows = await admin.fetch(WAITING_BARRIER)
            waiting = [r for r in rows if after is None or r["query_start"] > after]
            if waiting:
                [row] = waiting
                return row
            await asyncio.sleep(POLL_SECONDS)


async def test_a_batch_whose_barrier_wait_was_cancelled_is_published_only_once_replicated(
    template: Template, broker: Broker, tmp_path: Path
) -> None:
    exchange = f"orders-cancelled-{uuid.uuid4().hex[:8]}"
    recorder = Recorder(broker, exchange)
    await recorder.start()
    request = msgspec.convert(order_payload(), OrderRequest)
    with cluster(template, synchronous=True) as pair:
        await pair.wait_streaming()
        url = pair.database_url()
        admin = await asyncpg.connect(pair.primary.url())
        pool = await create_pool(url, size=2)
        try:
            with publisher(
                url, tmp_path, broker, exchange, "--poll-seconds", "0.1", "--metrics-port", "0"
            ) as publishing:
                creator = OrderCreator(
                    EventStore(pool), inline_projection=projections.orders.INLINE
                )
                pair.standby.freeze()
                # An order committed on the primary alone (its create's wait cancelled).
                created = asyncio.ensure_future(creator.create("only-on-primary", request, ""))
                await cancel_once_waiting(admin)
                with pytest.raises(StoreUnavailable):
                    await created

                first = await barrier_waiting(admin, None)
                assert await admin.fetchval("SELECT pg_cancel_backend($1)", first["pid"])
                # Tried again, not published: the barrier waits for the standby once more.
                await barrier_waiting(admin, first["query_start"])
                assert recorder.deliveries == []

                await standby_caught_up(pair, admin)
                await eventually(
                    lambda: delivered_all(recorder, pool),
                    f"published\n{publishing.log_text()[-3000:]}",
                )
                assert_exactly_the_store(recorder.deliveries, await stored_events(pool))
        finally:
            await pool.close()
            await admin.close()
            await recorder.close()
