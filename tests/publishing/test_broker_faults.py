"""The broker fails under the publisher: SIGKILLed under create load and restarted, nothing is
lost and the publisher reconnects by itself; a consumer's queue unbound, nothing the broker
confirmed is lost (the unrouted queue keeps it), and a message no queue took is never counted
as published."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from orders.create_order import OrderCreator
from orders.publishing.publisher import CHECKPOINT
from tests.processes.services import free_port
from tests.projections.support import caught_up, create_orders, eventually
from tests.publishing.support import (
    Recorder,
    assert_exactly_the_store,
    delivered_all,
    metric,
    publisher,
    stored_events,
)
from tests.support.broker import Broker


async def test_a_broker_killed_under_create_load_loses_nothing(
    database_url: str,
    pool: asyncpg.Pool,
    creator: OrderCreator,
    broker: Broker,
    exchange: str,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    port = free_port()
    args = ("--batch", "100", "--metrics-port", str(port))
    created: list[str] = []
    enough = asyncio.Event()

    async def create_load() -> None:
        """Creates, eight at a time, at most ~80 a second (the broker takes 10-20 s to come
        back), until told it is enough (bounded all the same)."""
        while not enough.is_set() and len(created) < 10_000:
            created.extend(await create_orders(creator, 8, concurrency=8))
            await asyncio.sleep(0.1)

    with publisher(database_url, tmp_path, broker, exchange, *args) as process:
        load = asyncio.create_task(create_load())

        async def some_delivered() -> bool:
            return len(recorder.deliveries) >= 50

        await eventually(some_delivered, f"publishing\n{process.log_text()}")
        await asyncio.to_thread(broker.kill)

        async def lag_grows() -> bool:
            # More than a publish step leaves behind at this load: measured while backing off.
            events = await metric(port, "orders_publish_lag_events") or 0
            seconds = await metric(port, "orders_publish_lag_seconds") or 0
            return events >= 40 and seconds >= 1

        await eventually(lag_grows, f"the lag grows while the broker is down\n{process.log_text()}")
        while_down = len(created)
        await asyncio.to_thread(broker.start)
        assert len(created) > while_down, "no create while the broker was down"
        after_restart = len(created)

        async def created_since_restart() -> bool:
            return len(created) >= after_restart + 50

        await eventually(created_since_restart, "creates go on")
        enough.set()
        await load
        await eventually(
            lambda: delivered_all(recorder, pool), f"all delivered\n{process.log_text()}", within=60
        )
        failed = await metric(port, 'orders_publish_batches_total{outcome="failed"}')
        assert process.process.poll() is None, "the publisher died instead of reconnecting"

    assert "batch not confirmed" in process.log_text() or failed
    assert await caught_up(pool, CHECKPOINT)
    assert_exactly_the_store(recorder.deliveries, await stored_events(pool))


async def test_unbound_queues_lose_nothing_and_a_returned_message_is_retried(
    database_url: str,
    pool: asyncpg.Pool,
    creator: OrderCreator,
    broker: Broker,
    exchange: str,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    port = free_port()
    args = ("--batch", "10", "--metrics-port", str(port))
    with publisher(database_url, tmp_path, broker, exchange, *args) as process:
        await create_orders(creator, 30)
        await eventually(lambda: delivered_all(recorder, pool), f"delivered\n{process.log_text()}")

        # No consumer's binding takes them: the alternate exchange's queue keeps them.
        await recorder.unbind()
        await create_orders(creator, 30)
        await eventually(lambda: caught_up(pool, CHECKPOINT), "published to the unrouted queue")
        assert await metric(port, "orders_publish_unroutable_total") == 0.0

        # Not even the unrouted queue takes them: each batch comes back, is not counted as
        # published, and is retried until the publisher has declared the binding again.
        await recorder.unbind_unrouted()
        await create_orders(creator, 30)

        async def returned() -> bool:
            return (await metric(port, "orders_publish_unroutable_total") or 0.0) > 0

        await eventually(returned, f"a return\n{process.log_text()}")
        await eventually(lambda: caught_up(pool, CHECKPOINT), "published after the return")
        assert (await metric(port, 'orders_publish_batches_total{outcome="failed"}') or 0) > 0

    stored = await stored_events(pool)
    kept = await recorder.drain_unrouted()
    assert len(recorder.deliveries) == 30
    assert_exactly_the_store(recorder.deliveries + kept, stored)
