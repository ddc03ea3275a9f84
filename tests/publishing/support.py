"""What the publishing tests share: a consumer that records every delivery, the check that
the deliveries are exactly the store's events in per-order order, and `orders publish` as a real
process."""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import asyncpg
import httpx
import msgspec
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from orders.eventstore.store import recorded_event
from orders.publishing.amqp import UNROUTED_SUFFIX, declare_topology
from orders.publishing.cloudevents import cloud_event
from tests.projections.support import OrdersProcess, orders_process
from tests.support.broker import Broker

BINDING = "orders.#"


@dataclass(frozen=True)
class Delivery:
    """One message as a consumer got it: the CloudEvent's fields and the AMQP properties."""

    id: str
    subject: str | None
    sequence: int
    type: str
    routing_key: str
    message_id: str | None
    content_type: str | None
    amqp_type: str | None
    persistent: bool
    has_timestamp: bool

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> Delivery:
        event = msgspec.json.decode(message.body)
        return cls(
            id=event["id"],
            subject=event.get("subject"),
            sequence=int(event["sequence"]),
            type=event["type"],
            routing_key=message.routing_key or "",
            message_id=message.message_id,
            content_type=message.content_type,
            amqp_type=message.type,
            persistent=message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT,
            has_timestamp=message.timestamp is not None,
        )

    @property
    def order(self) -> str:
        """What a consumer orders by: the order, or the event itself when it has none."""
        return self.subject or self.id


class Recorder:
    """A consumer with a durable queue of its own, bound with `orders.#` to `exchange`: it
    records every delivery (redeliveries too) and then acks it. Its connection is robust, so it
    comes back by itself after a broker restart."""

    def __init__(self, broker: Broker, exchange: str) -> None:
        self._broker = broker
        self._exchange_name = exchange
        self._queue_name = f"recorder-{uuid.uuid4().hex[:8]}"
        self.deliveries: list[Delivery] = []
        self._connection: AbstractRobustConnection | None = None
        self._queue: AbstractQueue | None = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self._broker.url, reconnect_interval=0.2)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=1000)
        await declare_topology(await channel.get_underlay_channel(), self._exchange_name)
        self._queue = await channel.declare_queue(self._queue_name, durable=True)
        await self._queue.bind(self._exchange_name, BINDING)
        await self._queue.consume(self._record)

    async def _record(self, message: AbstractIncomingMessage) -> None:
        self.deliveries.append(Delivery.of(message))
        await message.ack()

    async def unbind(self) -> None:
        assert self._queue is not None
        await self._queue.unbind(self._exchange_name, BINDING)

    async def unbind_unrouted(self) -> None:
        """Unbind the exchange's unrouted queue from its alternate exchange: then no queue
        takes an unrouted message (until the publisher declares the binding again)."""
        assert self._connection is not None
        channel = await self._connection.channel()
        name = self._exchange_name + UNROUTED_SUFFIX
        queue = await channel.declare_queue(name, durable=True)
        await queue.unbind(name)
        await channel.close()

    async def drain_unrouted(self) -> list[Delivery]:
        """Every message the exchange's unrouted queue holds (taken off it)."""
        assert self._connection is not None
        channel = await self._connection.channel()
        queue = await channel.declare_queue(self._exchange_name + UNROUTED_SUFFIX, durable=True)
        kept = []
        while (message := await queue.get(fail=False)) is not None:
            kept.append(Delivery.of(message))
            await message.ack()
        await channel.close()
        return kept

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def ids(self) -> set[str]:
        return {d.id for d in self.deliveries}


async def stored_events(pool: asyncpg.Pool) -> dict[str, tuple[str, int]]:
    """Every event in the store as its CloudEvents id -> (the order it belongs to, sequence)."""
    rows = await pool.fetch(
        "SELECT position, stream_id, version, event_type, data, metadata, tx_id, recorded_at"
        " FROM events"
    )
    events = {}
    for row in rows:
        event = cloud_event(recorded_event(row))
        events[event.id] = (event.subject or event.id, row["version"])
    return events


async def delivered_all(recorder: Recorder, pool: asyncpg.Pool) -> bool:
    return recorder.ids() >= set(await stored_events(pool))


def assert_exactly_the_store(
    deliveries: list[Delivery], stored: dict[str, tuple[str, int]]
) -> None:
    """The delivered ids are the store's, and each order's events arrived first in sequence
    order, contiguous from 1 (redeliveries aside)."""
    assert {d.id for d in deliveries} == set(stored)
    first_seen: dict[str, list[int]] = {}
    seen: set[str] = set()
    for d in deliveries:
        assert stored[d.id] == (d.order, d.sequence), d
        if d.id not in seen:
            seen.add(d.id)
            first_seen.setdefault(d.order, []).append(d.sequence)
    for order, sequences in first_seen.items():
        assert sequences == list(range(1, len(sequences) + 1)), (order, sequences)


def publisher(
    database_url: str,
    log_dir: Path,
    broker: Broker,
    exchange: str,
    *args: str,
) -> contextlib.AbstractContextManager[OrdersProcess]:
    """`orders publish <args>` against the database and the broker, killed on leaving."""
    return orders_process(
        database_url,
        log_dir,
        "publish",
        *args,
        env={"ORDERS_AMQP_URL": broker.url, "ORDERS_AMQP_EXCHANGE": exchange},
    )


async def publisher_leader(pool: asyncpg.Pool) -> int | None:
    """The process id of the `orders publish` holding the leader lock, if one does."""
    name: str | None = await pool.fetchval(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()"
        " AND a.application_name LIKE 'orders-publish-%'"
    )
    return None if name is None else int(name.rsplit("-", 1)[1])


async def metric(port: int, name: str) -> float | None:
    """The value of the sample `name` (with its labels, if any) on the publisher's /metrics."""
    try:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.TransportError:
        return None
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return None if found is None else float(found.group(1))
