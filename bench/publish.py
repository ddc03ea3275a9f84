"""`orders publish` under a create load at 64 connections, on a throwaway RabbitMQ node:

1. creates for `--seconds` without a publisher: the create rate without it, and a backlog;
2. the publisher starts while creates go on: how fast it takes the backlog from the store to
   broker-confirmed (events/s, by its checkpoint, while the load runs or until it caught up);
   then it catches up;
3. creates go on with the publisher caught up: the create rate with it, and the latency from a
   create's answer to a consumer's delivery of its OrderCreated (p50, p99), by a probe of its
   own (bench.delivery_latency);
4. creates go on while the publisher's client (orders.publishing.amqp), in this process,
   publishes the same messages from memory in batches of the same size with confirms, to
   the same broker: the ceiling the publisher is a ratio of. In 2 and 4 alike the messages
   go to a bound durable queue nobody consumes.

    .venv/bin/python -m bench.publish [--seconds 10] [--connections 64]

Targets: publication at least 0.7x the in-memory ceiling, creates with the publisher at least
0.9x those without, delivery p99 under 250 ms. Uses DATABASE_URL when set, else an embedded
PostgreSQL; the broker from `make rabbitmq`. Prints the figures and writes
bench/results/publish.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Final

import aio_pika
import asyncpg
import msgspec
from aio_pika.abc import AbstractIncomingMessage

from bench import scenarios
from bench.delivery_latency import Latency, LatencyProbe
from bench.load import Measurement, default_generator, run_load
from bench.report import save_json
from bench.service import postgres, serve
from orders.database import migrate_database
from orders.eventstore import START, EventStore
from orders.eventstore.pool import connect, create_pool
from orders.publishing.amqp import Broker as Publication
from orders.publishing.amqp import amqp_message, declare_topology
from orders.publishing.cloudevents import cloud_event
from orders.publishing.publisher import CHECKPOINT
from projections import catchup
from tests.support.broker import Broker, throwaway_broker

RESULTS: Final = Path(__file__).parent / "results" / "publish.json"
BATCH: Final = 500
SAMPLE_EVERY_SECONDS: Final = 0.05
CAUGHT_UP_EVENTS: Final = BATCH
"""The publisher has caught up once its lag is within one batch."""
CATCH_UP_WITHIN_SECONDS: Final = 120.0
BASELINE_MIN: Final = 5000
"""The in-memory ceiling publishes at least this many events (or all the store has)."""


class Result(msgspec.Struct, frozen=True, kw_only=True):
    creates_without: Measurement
    creates_with: Measurement
    create_ratio: float
    backlog_events: int
    published_events: int
    publish_seconds: float
    publish_rate: float
    caught_up: bool
    in_memory_events: int
    in_memory_rate: float
    publish_ratio: float
    latency: Latency


@contextlib.contextmanager
def publisher(url: str, broker: Broker, log: Path) -> Iterator[None]:
    orders = Path(sys.executable).with_name("orders")
    env = {**os.environ, "DATABASE_URL": url, "ORDERS_AMQP_URL": broker.url}
    command = [str(orders), "publish", "--batch", str(BATCH), "--metrics-port", "0"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=sink)
    try:
        yield
    finally:
        process.terminate()
        process.wait(30)


async def _published(conn: asyncpg.Connection) -> tuple[int, int]:
    """Events at or below the publisher's checkpoint (confirmed), and events after it."""
    total: int = await conn.fetchval("SELECT count(*) FROM events")
    lag = await catchup.lag(conn, CHECKPOINT)
    return total - lag.events, lag.events


async def _drain(conn: asyncpg.Connection, until: asyncio.Future[Measurement]) -> tuple[int, float]:
    """Sample the publisher until it has caught up (its lag within one batch) or `until` is
    done: the events it confirmed meanwhile and over how long."""
    before, _ = await _published(conn)
    started = time.monotonic()
    published = before
    while not until.done():
        published, behind = await _published(conn)
        if behind <= CAUGHT_UP_EVENTS:
            break
        await asyncio.sleep(SAMPLE_EVERY_SECONDS)
    return published - before, time.monotonic() - started


async def _catch_up(conn: asyncpg.Connection, within: float) -> bool:
    deadline = time.monotonic() + within
    while (await _published(conn))[1] > CAUGHT_UP_EVENTS:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(SAMPLE_EVERY_SECONDS)
    return True


async def _consume(broker: Broker, probe: LatencyProbe, ready: asyncio.Event) -> None:
    """A consumer of every OrderCreated (its own exclusive queue, no acks), telling the
    probe."""
    connection = await aio_pika.connect(broker.url)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=2000)
        await declare_topology(await channel.get_underlay_channel(), "orders")
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind("orders", "orders.OrderCreated")

        async def on_message(message: AbstractIncomingMessage) -> None:
            probe.delivered(msgspec.json.decode(message.body)["subject"])

        await queue.consume(on_message, no_ack=True)
        ready.set()
        await asyncio.Future()
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def _bound_queue(broker: Broker, exchange: str) -> AsyncIterator[None]:
    """A durable queue bound with `orders.#` to `exchange`, no consumer (what the publisher's
    messages and the in-memory ones go to alike), deleted on leaving; yields the exchange on a
    confirming channel."""
    connection = await aio_pika.connect(broker.url)
    try:
        channel = await connection.channel()
        await declare_topology(await channel.get_underlay_channel(), exchange)
        queue = await channel.declare_queue(f"bench-{exchange}", durable=True)
        await queue.bind(exchange, "orders.#")
        yield
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()


async def _in_memory_rate(url: str, broker: Broker, count: int) -> tuple[int, float]:
    """The publisher's client alone (orders.publishing.amqp): the first `count` events of the
    store as messages built beforehand, published in batches of BATCH with confirms to an
    exchange of their own, declared and bound as the publisher's is."""
    pool = await create_pool(url, size=2)
    try:
        recorded = await EventStore(pool).read_all(START, limit=count)
    finally:
        await pool.close()
    events = [cloud_event(r) for r in recorded]
    messages = [amqp_message(e) for e in events]
    async with _bound_queue(broker, "bench-in-memory"):
        publication = await Publication.connect(broker.url, "bench-in-memory", confirm_timeout=60)
        try:
            started = time.perf_counter()
            for i in range(0, len(messages), BATCH):
                await publication.publish(messages[i : i + BATCH])
            seconds = time.perf_counter() - started
        finally:
            await publication.close()
    return len(messages), len(messages) / seconds


async def measure(
    url: str, base_url: str, broker: Broker, logs: Path, connections: int, seconds: float
) -> Result:
    generator = default_generator()
    creates = scenarios.creates()

    def load() -> Measurement:
        return run_load(generator, creates, base_url, connections, seconds)

    without = await asyncio.to_thread(load)
    probe = LatencyProbe(base_url)
    conn = await connect(url, application_name="bench-publish")
    try:
        backlog: int = await conn.fetchval("SELECT count(*) FROM events")
        with publisher(url, broker, logs / "publish.log"):
            async with _bound_queue(broker, "orders"):
                loading = asyncio.create_task(asyncio.to_thread(load))
                published, publish_seconds = await _drain(conn, loading)
                await loading
                caught_up = await _catch_up(conn, CATCH_UP_WITHIN_SECONDS)

            ready = asyncio.Event()
            consumer = asyncio.create_task(_consume(broker, probe, ready))
            await ready.wait()
            stop = asyncio.Event()
            probing = asyncio.create_task(probe.run(stop))
            try:
                with_publisher = await asyncio.to_thread(load)
            finally:
                stop.set()
                await probing
            await probe.settle()
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
    finally:
        await conn.close()

    loading = asyncio.create_task(asyncio.to_thread(load))
    in_memory, in_memory_rate = await _in_memory_rate(url, broker, max(published, BASELINE_MIN))
    await loading
    publish_rate = published / publish_seconds if publish_seconds else 0.0
    return Result(
        creates_without=without,
        creates_with=with_publisher,
        create_ratio=with_publisher.rate / without.rate if without.rate else 0.0,
        backlog_events=backlog,
        published_events=published,
        publish_seconds=publish_seconds,
        publish_rate=publish_rate,
        caught_up=caught_up,
        in_memory_events=in_memory,
        in_memory_rate=in_memory_rate,
        publish_ratio=publish_rate / in_memory_rate if in_memory_rate else 0.0,
        latency=probe.latency(),
    )


def run(seconds: float, connections: int) -> Result:
    with (
        postgres(os.environ.get("DATABASE_URL")) as (url, _),
        tempfile.TemporaryDirectory(prefix="bench-publish-") as scratch,
        throwaway_broker() as broker,
    ):
        asyncio.run(migrate_database(url))
        logs = Path(scratch)
        with serve(url, workers=2, pool_size=8, log=logs / "serve.log") as service:
            return asyncio.run(measure(url, service.base_url, broker, logs, connections, seconds))


def render(r: Result) -> str:
    def verdict(ok: bool) -> str:
        return "meets" if ok else "MISSES"

    lat = r.latency
    return "\n".join(
        [
            f"creates at {r.creates_without.connections} connections "
            f"({r.creates_without.generator}): {r.creates_without.rate:,.0f}/s without the "
            f"publisher, {r.creates_with.rate:,.0f}/s with it: {r.create_ratio:.2f}x "
            f"({verdict(r.create_ratio >= 0.9)} the 0.9x target)",
            f"publication, store to broker-confirmed, under that load: {r.publish_rate:,.0f} "
            f"events/s ({r.published_events:,} of a {r.backlog_events:,}-event backlog in "
            f"{r.publish_seconds:.1f} s{'' if r.caught_up else ', not caught up'})",
            f"the same client from memory, same messages, batches of {BATCH} with confirms: "
            f"{r.in_memory_rate:,.0f} events/s ({r.in_memory_events:,} events): "
            f"{r.publish_ratio:.2f}x ({verdict(r.publish_ratio >= 0.7)} the 0.7x target)",
            f"create answer to consumer delivery over the broker ({lat.delivered} of "
            f"{lat.probes} probes): p50 {lat.p50_ms:.1f} ms, p99 {lat.p99_ms:.1f} ms, max "
            f"{lat.max_ms:.1f} ms ({verdict(lat.p99_ms < 250)} the 250 ms p99 target)",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    result = run(args.seconds, args.connections)
    print(render(result))
    save_json(RESULTS, result)


if __name__ == "__main__":
    main()
