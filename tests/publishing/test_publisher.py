"""`orders publish` as a real process on the real broker: every event reaches a consumer with
its CloudEvents id as message id, a publisher SIGKILLed mid-batch re-sends at most that batch,
and a standby takes over from a dead leader within seconds."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx

from orders.create_order import OrderCreator
from orders.eventstore import EventStore
from orders.publishing.cloudevents import CONTENT_TYPE, TYPES, event_id
from orders.publishing.publisher import CHECKPOINT
from tests.processes.services import free_port
from tests.projections.support import (
    caught_up,
    checkpoint_position,
    create_orders,
    eventually,
    move_orders,
)
from tests.publishing.support import (
    Recorder,
    assert_exactly_the_store,
    delivered_all,
    metric,
    publisher,
    publisher_leader,
    stored_events,
)
from tests.support.broker import Broker


async def test_every_event_is_published_with_its_id_type_and_properties(
    database_url: str,
    pool: asyncpg.Pool,
    creator: OrderCreator,
    broker: Broker,
    exchange: str,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    keys = await create_orders(creator, 30)
    await move_orders(EventStore(pool), keys)
    port = free_port()
    with publisher(
        database_url, tmp_path, broker, exchange, "--batch", "7", "--metrics-port", str(port)
    ) as process:
        await eventually(lambda: delivered_all(recorder, pool), f"delivered\n{process.log_text()}")
        more = await create_orders(creator, 5)
        await eventually(lambda: delivered_all(recorder, pool), "new events delivered")

        async def lag_is_zero() -> bool:
            return await metric(port, "orders_publish_lag_events") == 0.0

        await eventually(lag_is_zero, "the lag metric reports zero")
        assert await metric(port, "orders_publish_leader") == 1.0
        stored = await stored_events(pool)
        assert await metric(port, "orders_publish_events_total") == len(stored)
        assert await metric(port, 'orders_publish_batches_total{outcome="failed"}') == 0.0
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200

    assert more and await caught_up(pool, CHECKPOINT)
    assert_exactly_the_store(recorder.deliveries, stored)
    assert {d.type for d in recorder.deliveries} >= {"orders.OrderCreated", "orders.OrderPaid"}
    for d in recorder.deliveries:
        assert d.type in TYPES
        assert d.routing_key == d.type == d.amqp_type
        assert d.message_id == d.id
        assert d.content_type == CONTENT_TYPE
        assert d.persistent and d.has_timestamp


async def test_a_publisher_killed_mid_batch_resends_only_that_batch(
    database_url: str,
    pool: asyncpg.Pool,
    creator: OrderCreator,
    broker: Broker,
    exchange: str,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    batch = 10
    await create_orders(creator, 600, concurrency=16)
    args = ("--batch", str(batch), "--metrics-port", "0")
    with publisher(database_url, tmp_path, broker, exchange, *args) as first:

        async def started() -> bool:
            return await checkpoint_position(pool, CHECKPOINT) > 0

        await eventually(started, f"the publisher started\n{first.log_text()}")
        first.kill()
    assert not await caught_up(pool, CHECKPOINT), "published everything before the kill"
    published_before = await pool.fetch(
        "SELECT e.stream_id, e.version FROM events e JOIN projection_checkpoints c"
        " ON c.projection = $1 WHERE (e.tx_id, e.position) <= (c.tx_id, c.position)",
        CHECKPOINT,
    )
    confirmed = {event_id(r["stream_id"], r["version"]) for r in published_before}

    async def confirmed_delivered() -> bool:
        # What the broker confirmed is queued: it reaches the consumer without the second
        # publisher, but not necessarily by the time the first one was killed.
        return {d.id for d in recorder.deliveries} >= confirmed

    await eventually(confirmed_delivered, "the checkpointed events reach the consumer")

    with publisher(database_url, tmp_path, broker, exchange, *args) as second:
        await eventually(lambda: delivered_all(recorder, pool), f"delivered\n{second.log_text()}")

    stored = await stored_events(pool)
    assert_exactly_the_store(recorder.deliveries, stored)
    counts: dict[str, int] = {}
    for d in recorder.deliveries:
        counts[d.id] = counts.get(d.id, 0) + 1
    duplicated = {i for i, n in counts.items() if n > 1}
    # Only the batch in hand at the kill was sent twice: at most one batch, and none of it
    # covered by the checkpoint.
    assert len(duplicated) <= batch
    assert not duplicated & confirmed


async def test_a_standby_publisher_takes_over_within_seconds_of_the_leaders_death(
    database_url: str,
    pool: asyncpg.Pool,
    creator: OrderCreator,
    broker: Broker,
    exchange: str,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    args = ("--batch", "50", "--metrics-port", "0", "--poll-seconds", "0.2")
    with (
        publisher(database_url, tmp_path, broker, exchange, *args) as one,
        publisher(database_url, tmp_path, broker, exchange, *args) as other,
    ):
        processes = {p.process.pid: p for p in (one, other)}

        async def someone_leads() -> bool:
            return await publisher_leader(pool) in processes

        await eventually(someone_leads, "a publisher leads")
        doomed = processes.pop(await publisher_leader(pool) or 0)
        (standby,) = processes.values()
        await create_orders(creator, 50)
        await eventually(lambda: delivered_all(recorder, pool), "the leader publishes")

        doomed.kill()
        await create_orders(creator, 50)

        async def standby_leads() -> bool:
            return await publisher_leader(pool) == standby.process.pid

        await eventually(standby_leads, f"the standby leads\n{standby.log_text()}", within=5)
        await eventually(lambda: delivered_all(recorder, pool), "the new leader publishes")

    assert_exactly_the_store(recorder.deliveries, await stored_events(pool))
