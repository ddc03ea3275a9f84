"""`orders publish` under a create load at 64 connections, on a throwaway RabbitMQ node.

Six phases, each of `--seconds` of creates at `--connections`, in this order:

1. creates without a publisher: the create rate without it, and a backlog;
2. publication: the publisher starts while creates go on; how fast it moves events from the
   store to broker-confirmed (events/s, by its checkpoint, from its first confirmed batch until
   it has caught up or the load ends: its start-up is not publication), and the CPU per event
   of its process tree and of the broker's; then it catches up, without load;
3. creates with the publisher caught up and nothing of the bench's consuming: the create rate
   with it (the ratio to 1) and what each create cost the service and PostgreSQL, beside what
   each event published meanwhile cost the publisher and the broker;
4. delivery: creates go on with the publisher and a consumer of the bench's (its own queue),
   while a probe of its own (bench.delivery_latency) measures the latency from a create's
   answer to the consumer's delivery of its OrderCreated (p50, p99). Apart from 3, because the
   consumer and the probe run in this process and take CPU that is not the publisher's;
5. creates without a publisher again, once it has stopped: the rate without it is the mean of
   1 and 5, so that the machine's drift over the run (four back-to-back 8 s runs of the same
   creates made 3,100 to 4,200/s on the shared 2-core machine) does not pass for the
   publisher's cost; both are shown;
6. the ceiling: creates go on while the publisher's client (orders.publishing.amqp), in this
   process, publishes the same messages from memory in batches of the same size with
   confirms, one batch at a time as the publisher sends them, to the same broker; the CPU per
   event of the thread publishing them and of the broker.

In 2, 3 and 6 the messages go to a bound durable queue nobody consumes. CPU figures come from
/proc (bench.cpu) and compare only within one run; the publisher's mean batch (its metrics)
is shown beside them, since its costs are per batch as much as per event.

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
import re
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Final, NamedTuple

import aio_pika
import asyncpg
import httpx
import msgspec
from aio_pika.abc import AbstractIncomingMessage

from bench import scenarios
from bench.cpu import CpuMeter, postmaster_pid, thread_cpu_seconds, trees_cpu_seconds
from bench.delivery_latency import Latency, LatencyProbe
from bench.load import Measurement, default_generator, run_load
from bench.report import save_json
from bench.service import free_port, orders_command, postgres, serve
from orders.database import migrate_database
from orders.eventstore import START, EventStore, Position
from orders.eventstore.pool import connect, create_pool
from orders.publishing import amqp
from orders.publishing.amqp import amqp_message, declare_topology
from orders.publishing.cloudevents import cloud_event
from orders.publishing.publisher import CHECKPOINT
from projections.catchup import stored_checkpoint
from tests.support.broker import Broker, throwaway_broker

RESULTS: Final = Path(__file__).parent / "results" / "publish.json"
BATCH: Final = 500
SAMPLE_EVERY_SECONDS: Final = 0.05
CAUGHT_UP_EVENTS: Final = BATCH
"""The publisher has caught up once its lag is within one batch."""
CATCH_UP_WITHIN_SECONDS: Final = 120.0
BASELINE_MIN: Final = 5000
"""The in-memory ceiling publishes at least this many events (or all the store has)."""

_BEHIND: Final = """
SELECT count(*) FROM (
    SELECT 1 FROM events WHERE (tx_id, position) > ($1::xid8, $2::bigint) LIMIT $3
) behind
"""
"""Events after a checkpoint, counted up to $3: an index range scan of at most $3 rows, so
that sampling the publisher every 50 ms costs PostgreSQL next to nothing."""

_BETWEEN: Final = """
SELECT count(*) FROM events
WHERE (tx_id, position) > ($1::xid8, $2::bigint) AND (tx_id, position) <= ($3::xid8, $4::bigint)
"""


class Publication(msgspec.Struct, frozen=True, kw_only=True):
    """Events published over a window, and the CPU each cost the client's side (the
    publisher's process tree, or the thread publishing from memory) and the broker's tree."""

    events: int
    seconds: float
    rate: float
    client_cpu_us: float | None
    broker_cpu_us: float | None
    events_per_batch: float | None
    """The mean batch (the publisher's by its metrics): small when it has caught up."""


class Result(msgspec.Struct, frozen=True, kw_only=True):
    creates_without: Measurement
    """Phase 1, before the publisher ran."""
    creates_without_after: Measurement
    """Phase 5, after it stopped."""
    creates_with: Measurement
    """Phase 3: the publisher caught up, no consumer of the bench's."""
    create_ratio: float
    published_with: Publication
    """What the publisher published during phase 3, and its CPU per event."""
    backlog_events: int
    publication: Publication
    caught_up: bool
    in_memory: Publication
    publish_ratio: float
    creates_probed: Measurement
    """Phase 4: creates beside the latency probe and the bench's consumer."""
    latency: Latency


class _Sample(NamedTuple):
    publisher_cpu: float | None
    broker_cpu: float | None
    batches: float | None
    """Batches the publisher had confirmed (orders_publish_batches_total), None unread."""


class _Running(NamedTuple):
    """The publisher's process and its metrics port, and the broker's process."""

    pid: int
    metrics_port: int
    broker: int | None

    async def sample(self) -> _Sample:
        publisher_cpu, broker_cpu = trees_cpu_seconds(self.pid, self.broker)
        return _Sample(publisher_cpu, broker_cpu, await self._batches())

    async def _batches(self) -> float | None:
        try:
            async with httpx.AsyncClient() as client:
                text = (await client.get(f"http://127.0.0.1:{self.metrics_port}/metrics")).text
        except httpx.TransportError:
            return None
        found = re.search(
            r'^orders_publish_batches_total\{outcome="confirmed"\} (\S+)$', text, re.M
        )
        return None if found is None else float(found.group(1))


def _per_event_us(before: float | None, after: float | None, events: int) -> float | None:
    if before is None or after is None or events == 0:
        return None
    return (after - before) / events * 1e6


def _publication(events: int, seconds: float, before: _Sample, after: _Sample) -> Publication:
    batches = None
    if before.batches is not None and after.batches is not None:
        batches = after.batches - before.batches
    return Publication(
        events=events,
        seconds=seconds,
        rate=events / seconds if seconds else 0.0,
        client_cpu_us=_per_event_us(before.publisher_cpu, after.publisher_cpu, events),
        broker_cpu_us=_per_event_us(before.broker_cpu, after.broker_cpu, events),
        events_per_batch=events / batches if batches else None,
    )


@contextlib.contextmanager
def publisher(url: str, broker: Broker, log: Path) -> Iterator[_Running]:
    """`orders publish` as a child process."""
    env = {**os.environ, "DATABASE_URL": url, "ORDERS_AMQP_URL": broker.url}
    port = free_port()
    command = [*orders_command(), "publish", "--batch", str(BATCH), "--metrics-port", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=sink)
    try:
        yield _Running(process.pid, port, broker.pid)
    finally:
        process.terminate()
        process.wait(30)


async def _behind(conn: asyncpg.Connection, checkpoint: Position, limit: int) -> int:
    behind: int = await conn.fetchval(_BEHIND, checkpoint.tx_id, checkpoint.position, limit)
    return behind


async def _caught_up(conn: asyncpg.Connection, checkpoint: Position) -> bool:
    return await _behind(conn, checkpoint, CAUGHT_UP_EVENTS + 1) <= CAUGHT_UP_EVENTS


async def _between(conn: asyncpg.Connection, after: Position, upto: Position) -> int:
    count: int = await conn.fetchval(
        _BETWEEN, after.tx_id, after.position, upto.tx_id, upto.position
    )
    return count


async def _drain(
    conn: asyncpg.Connection, running: _Running, until: asyncio.Future[Measurement]
) -> Publication:
    """Sample the publisher's checkpoint from its first confirmed batch until it has caught up
    (its lag within one batch) or `until` is done: what it published meanwhile."""
    initial = await stored_checkpoint(conn, CHECKPOINT)
    first = initial
    while first == initial and not until.done():
        await asyncio.sleep(SAMPLE_EVERY_SECONDS / 10)
        first = await stored_checkpoint(conn, CHECKPOINT)
    started, before = time.monotonic(), await running.sample()
    last = first
    while not until.done():
        last = await stored_checkpoint(conn, CHECKPOINT)
        if await _caught_up(conn, last):
            break
        await asyncio.sleep(SAMPLE_EVERY_SECONDS)
    seconds, after = time.monotonic() - started, await running.sample()
    return _publication(await _between(conn, first, last), seconds, before, after)


async def _catch_up(conn: asyncpg.Connection, within: float) -> bool:
    deadline = time.monotonic() + within
    while not await _caught_up(conn, await stored_checkpoint(conn, CHECKPOINT)):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(SAMPLE_EVERY_SECONDS)
    return True


async def _published_meanwhile(
    conn: asyncpg.Connection, running: _Running, load: Callable[[], Measurement]
) -> tuple[Measurement, Publication]:
    """`load()`'s measurement, and what the publisher published while it ran."""
    start, before = await stored_checkpoint(conn, CHECKPOINT), await running.sample()
    measured = await asyncio.to_thread(load)
    end, after = await stored_checkpoint(conn, CHECKPOINT), await running.sample()
    events = await _between(conn, start, end)
    return measured, _publication(events, measured.seconds, before, after)


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


async def _delivery_latency(
    broker: Broker, probe: LatencyProbe, load: Callable[[], Measurement]
) -> Measurement:
    """`load()` beside the probe and a consumer telling it (phase 4)."""
    ready = asyncio.Event()
    consumer = asyncio.create_task(_consume(broker, probe, ready))
    await ready.wait()
    stop = asyncio.Event()
    probing = asyncio.create_task(probe.run(stop))
    try:
        measured = await asyncio.to_thread(load)
    finally:
        stop.set()
        await probing
    await probe.settle()
    consumer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await consumer
    return measured


@contextlib.asynccontextmanager
async def _bound_queue(broker: Broker, exchange: str) -> AsyncIterator[None]:
    """A durable queue bound with `orders.#` to `exchange`, no consumer (what the publisher's
    messages and the in-memory ones go to alike), deleted on leaving."""
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


async def _in_memory(url: str, broker: Broker, count: int) -> Publication:
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
        publication = await amqp.Broker.connect(broker.url, "bench-in-memory", confirm_timeout=60)
        try:
            (broker_before,) = trees_cpu_seconds(broker.pid)
            cpu_before, started = thread_cpu_seconds(), time.perf_counter()
            for i in range(0, len(messages), BATCH):
                await publication.publish(messages[i : i + BATCH])
            seconds, cpu_after = time.perf_counter() - started, thread_cpu_seconds()
            (broker_after,) = trees_cpu_seconds(broker.pid)
        finally:
            await publication.close()
    return _publication(
        len(messages),
        seconds,
        _Sample(cpu_before, broker_before, 0),
        _Sample(cpu_after, broker_after, -(-len(messages) // BATCH)),
    )


async def measure(
    url: str,
    service: int,
    base_url: str,
    broker: Broker,
    logs: Path,
    connections: int,
    seconds: float,
) -> Result:
    generator = default_generator()
    creates = scenarios.creates()
    meter = CpuMeter(service=service, postgres=await postmaster_pid(url))

    def load() -> Measurement:
        return run_load(generator, creates, base_url, connections, seconds)

    def metered() -> Measurement:
        return meter.measure(load)

    without = await asyncio.to_thread(metered)
    probe = LatencyProbe(base_url)
    conn = await connect(url, application_name="bench-publish")
    try:
        backlog: int = await conn.fetchval("SELECT count(*) FROM events")
        with publisher(url, broker, logs / "publish.log") as running:
            async with _bound_queue(broker, "orders"):
                loading = asyncio.create_task(asyncio.to_thread(load))
                publication = await _drain(conn, running, loading)
                await loading
                caught_up = await _catch_up(conn, CATCH_UP_WITHIN_SECONDS)
                with_publisher, published_with = await _published_meanwhile(conn, running, metered)
            probed = await _delivery_latency(broker, probe, load)
    finally:
        await conn.close()
    without_after = await asyncio.to_thread(metered)

    loading = asyncio.create_task(asyncio.to_thread(load))
    in_memory = await _in_memory(url, broker, max(publication.events, BASELINE_MIN))
    await loading
    mean_without = (without.rate + without_after.rate) / 2
    return Result(
        creates_without=without,
        creates_without_after=without_after,
        creates_with=with_publisher,
        create_ratio=with_publisher.rate / mean_without if mean_without else 0.0,
        published_with=published_with,
        backlog_events=backlog,
        publication=publication,
        caught_up=caught_up,
        in_memory=in_memory,
        publish_ratio=publication.rate / in_memory.rate if in_memory.rate else 0.0,
        creates_probed=probed,
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
            return asyncio.run(
                measure(url, service.pid, service.base_url, broker, logs, connections, seconds)
            )


def _number(value: float | None, format: str) -> str:
    return "-" if value is None else f"{value:{format}}"


def _cpu_table(r: Result) -> list[str]:
    """Each phase's rate beside the CPU it cost, per create (ms) and per event (us)."""
    rows = [
        ("1 creates, no publisher", f"{r.creates_without.rate:,.0f}/s", r.creates_without, None),
        (
            "5 creates, after it",
            f"{r.creates_without_after.rate:,.0f}/s",
            r.creates_without_after,
            None,
        ),
        ("2 publication", f"{r.publication.rate:,.0f} ev/s", None, r.publication),
        ("3 creates, publisher", f"{r.creates_with.rate:,.0f}/s", r.creates_with, r.published_with),
        ("6 ceiling (from memory)", f"{r.in_memory.rate:,.0f} ev/s", None, r.in_memory),
    ]
    lines = [
        f"{'phase':<25}{'rate':>13}{'service':>10}{'postgres':>10}{'client':>9}{'broker':>9}"
        f"{'events':>8}",
        f"{'':<25}{'':>13}{'ms/create':>10}{'ms/create':>10}{'us/ev':>9}{'us/ev':>9}{'/batch':>8}",
    ]
    for name, rate, creates, published in rows:
        lines.append(
            f"{name:<25}{rate:>13}"
            f"{_number(creates.service_cpu_ms if creates else None, '.3f'):>10}"
            f"{_number(creates.postgres_cpu_ms if creates else None, '.3f'):>10}"
            f"{_number(published.client_cpu_us if published else None, '.0f'):>9}"
            f"{_number(published.broker_cpu_us if published else None, '.0f'):>9}"
            f"{_number(published.events_per_batch if published else None, '.0f'):>8}"
        )
    lines.append(
        "(client: the publisher's process tree in 2 and 3, the thread publishing from memory in 6)"
    )
    return lines


def render(r: Result) -> str:
    def verdict(ok: bool) -> str:
        return "meets" if ok else "MISSES"

    lat = r.latency
    pub = r.publication
    return "\n".join(
        [
            f"creates at {r.creates_without.connections} connections "
            f"({r.creates_without.generator}): {r.creates_without.rate:,.0f}/s and "
            f"{r.creates_without_after.rate:,.0f}/s without the publisher (before, after), "
            f"{r.creates_with.rate:,.0f}/s with it: {r.create_ratio:.2f}x of their mean "
            f"({verdict(r.create_ratio >= 0.9)} the 0.9x target)",
            f"publication, store to broker-confirmed, under that load: {pub.rate:,.0f} "
            f"events/s ({pub.events:,} events in {pub.seconds:.1f} s after its first batch, "
            f"of a {r.backlog_events:,}-event backlog{'' if r.caught_up else ', not caught up'})",
            f"the same client from memory, same messages, batches of {BATCH} with confirms: "
            f"{r.in_memory.rate:,.0f} events/s ({r.in_memory.events:,} events): "
            f"{r.publish_ratio:.2f}x ({verdict(r.publish_ratio >= 0.7)} the 0.7x target)",
            f"create answer to consumer delivery over the broker ({lat.delivered} of "
            f"{lat.probes} probes, creates meanwhile {r.creates_probed.rate:,.0f}/s): "
            f"p50 {lat.p50_ms:.1f} ms, p99 {lat.p99_ms:.1f} ms, max {lat.max_ms:.1f} ms "
            f"({verdict(lat.p99_ms < 250)} the 250 ms p99 target)",
            "",
            *_cpu_table(r),
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
