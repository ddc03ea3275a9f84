"""Transactions the publisher must wait for: one that took a low position and commits after
higher ones, and a long-open one elsewhere on the server. The lag grows meanwhile; nothing is
skipped, and each order's events arrive in order."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from orders.create_order import OrderCreator
from orders.eventstore import EventStore
from orders.eventstore.pool import connect
from orders.publishing.publisher import CHECKPOINT
from tests.processes.services import free_port
from tests.projections.support import caught_up, create_orders, eventually, move_orders
from tests.publishing.support import (
    Recorder,
    assert_exactly_the_store,
    delivered_all,
    metric,
    publisher,
    stored_events,
)
from tests.support.broker import Broker
from tests.support.databases import DatabaseFactory


async def lag_reaches(port: int, events: int) -> bool:
    return (await metric(port, "orders_publish_lag_events") or 0) >= events


async def test_a_low_position_committed_after_higher_ones_is_delivered_in_order(
    database_url: str,
    pool: asyncpg.Pool,
    creator: OrderCreator,
    broker: Broker,
    exchange: str,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    port = free_port()
    args = ("--batch", "5", "--metrics-port", str(port), "--poll-seconds", "0.1")
    with publisher(database_url, tmp_path, broker, exchange, *args) as process:
        keys = await create_orders(creator, 2)
        await eventually(lambda: delivered_all(recorder, pool), f"delivered\n{process.log_text()}")
        conn = await connect(database_url)
        try:
            transaction = conn.transaction()
            await transaction.start()
            # The second order is paid in a transaction that takes its position now...
            assert await move_orders(EventStore(conn), keys) == 1
            # ...and commits after twenty creates with higher positions.
            await create_orders(creator, 20)
            await eventually(lambda: lag_reaches(port, 20), "the lag grows")
            assert len(recorder.ids()) == 2, "published past an open transaction"
            await transaction.commit()
        finally:
            await conn.close()
        await eventually(lambda: delivered_all(recorder, pool), "all delivered")
        assert await caught_up(pool, CHECKPOINT)

    stored = await stored_events(pool)
    assert len(stored) == 23
    assert_exactly_the_store(recorder.deliveries, stored)


async def test_a_long_open_transaction_elsewhere_holds_publication_back_and_skips_nothing(
    database_url: str,
    pool: asyncpg.Pool,
    databases: DatabaseFactory,
    creator: OrderCreator,
    broker: Broker,
    exchange: str,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    port = free_port()
    args = ("--batch", "5", "--metrics-port", str(port), "--poll-seconds", "0.1")
    elsewhere = await connect(await databases.create())
    with publisher(database_url, tmp_path, broker, exchange, *args) as process:
        await create_orders(creator, 3)
        await eventually(lambda: delivered_all(recorder, pool), f"delivered\n{process.log_text()}")
        try:
            transaction = elsewhere.transaction()
            await transaction.start()
            # A transaction id of its own, in another database of the same server: every
            # snapshot's xmin stays below it until it ends.
            await elsewhere.fetchval("SELECT pg_current_xact_id()")
            await create_orders(creator, 30)
            await eventually(lambda: lag_reaches(port, 30), "the lag grows")

            async def lag_ages() -> bool:
                return (await metric(port, "orders_publish_lag_seconds") or 0) > 0.2

            await eventually(lag_ages, "the lag's age grows")
            assert len(recorder.ids()) == 3, "published past an open transaction"
            await transaction.commit()
        finally:
            await elsewhere.close()
        await eventually(lambda: delivered_all(recorder, pool), "all delivered")

    assert_exactly_the_store(recorder.deliveries, await stored_events(pool))
