"""The event feed under a create load, and what notifying on every append costs.

    .venv/bin/python -m bench.feed [--seconds 15] [--connections 64] [--probes-per-second 20]

Delivery: `orders serve --workers 2` takes creates at `--connections` (wrk when installed, else
the Python generator of bench.load) while a consumer long-polls the feed from its head (one
request at a time, `wait=30`, following each `Link: rel="next"`) and a probe sends creates of
its own a few times a second. A probe's latency is from its create's answer to the consumer's
delivery of that order's event, both read off this process's monotonic clock (issue 19: p99
under 250 ms at 64 connections).

Notify cost: creates through OrderCreator with the inline projection, `--connections` at a
time in this process, with the AppendNotifier (as the service runs now) and without it (as
inline mode ran before the feed), in alternating rounds; the rate with it as a ratio to the
rate without.

Uses DATABASE_URL when set, else an embedded PostgreSQL in a fresh temporary directory. Prints
the figures and writes bench/results/feed.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Final

import httpx
import msgspec

import projections.orders
from bench import scenarios
from bench.load import Measurement, default_generator, percentile, run_load
from bench.report import save_json
from bench.service import postgres, serve
from orders.create_order import OrderCreator
from orders.database import migrate_database
from orders.domain.commands import OrderRequest
from orders.eventstore import EventStore
from orders.eventstore.notify import AppendNotifier
from orders.eventstore.pool import create_pool

RESULTS: Final = Path(__file__).parent / "results" / "feed.json"
EVENTS: Final = "/api/v1/events"
WAIT_SECONDS: Final = 30
_NEXT: Final = re.compile(r'<([^>]*)>; rel="next"')
_REQUEST: Final = msgspec.json.decode(scenarios.BODY, type=OrderRequest)


class _Event(msgspec.Struct):
    subject: str | None = None


_batch: Final = msgspec.json.Decoder(list[_Event])


class Delivery(msgspec.Struct, frozen=True):
    creates: Measurement
    probes: int
    delivered: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    events_read: int
    """Every event the consumer read meanwhile (the load's and the probes')."""


class NotifyCost(msgspec.Struct, frozen=True):
    connections: int
    seconds_per_round: float
    rounds: int
    with_notify_per_second: float
    without_notify_per_second: float
    ratio: float
    """With as a ratio to without."""


class Result(msgspec.Struct, frozen=True):
    delivery: Delivery
    notify_cost: NotifyCost


# -- delivery latency ----------------------------------------------------------------------


async def _head(client: httpx.AsyncClient) -> str:
    """The request that waits for the first event after those already in the store."""
    page = await client.get(f"{EVENTS}?limit=500")
    while page.json():
        page = await client.get(_next(page))
    return f"{_next(page)}&wait={WAIT_SECONDS}"  # each next link keeps the wait


class _Consumed:
    """What the consumer has read so far, and a condition notified after every page."""

    def __init__(self) -> None:
        self.delivered: dict[str, float] = {}
        """Each order's id -> when its first event arrived."""
        self.read = 0
        self.progress = asyncio.Condition()


async def _consume(client: httpx.AsyncClient, following: str, consumed: _Consumed) -> None:
    """Follow the feed from `following` until cancelled, noting when each order's first event
    came."""
    while True:
        page = await client.get(following)
        arrived = time.monotonic()
        following = _next(page)
        events = _batch.decode(page.content)
        async with consumed.progress:
            consumed.read += len(events)
            for event in events:
                if event.subject is not None:
                    consumed.delivered.setdefault(event.subject, arrived)
            consumed.progress.notify_all()


def _next(answer: httpx.Response) -> str:
    answer.raise_for_status()
    link = _NEXT.fullmatch(answer.headers["link"])
    assert link is not None, answer.headers["link"]
    return link[1]


async def _probe(
    client: httpx.AsyncClient, per_second: float, answered: dict[str, float], stop: asyncio.Event
) -> None:
    headers = {"Content-Type": "application/json"}
    while not stop.is_set():
        headers["Idempotency-Key"] = f"probe-{uuid.uuid4()}"
        answer = await client.post("/api/v1/orders", content=scenarios.BODY, headers=headers)
        done = time.monotonic()
        if answer.status_code == 201:
            answered[answer.json()["order_id"]] = done
        await asyncio.sleep(1 / per_second)


async def measure_delivery(
    base_url: str, connections: int, seconds: float, probes_per_second: float
) -> Delivery:
    answered: dict[str, float] = {}
    consumed = _Consumed()
    stop = asyncio.Event()
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=WAIT_SECONDS + 30) as consumer,
        httpx.AsyncClient(base_url=base_url, timeout=30) as prober,
    ):
        head = await _head(consumer)
        consuming = asyncio.create_task(_consume(consumer, head, consumed))
        probing = asyncio.create_task(_probe(prober, probes_per_second, answered, stop))
        try:
            creates = await asyncio.to_thread(
                run_load, default_generator(), scenarios.creates(), base_url, connections, seconds
            )
        finally:
            stop.set()
        # Only once probing has ended is `answered` final: a probe's create may be in the
        # feed before its answer reaches the probe.
        await probing
        try:
            async with consumed.progress, asyncio.timeout(WAIT_SECONDS):
                await consumed.progress.wait_for(
                    lambda: answered.keys() <= consumed.delivered.keys()
                )
        except TimeoutError:
            pass  # reported: fewer delivered than probes
        finally:
            consuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consuming  # raises what made the consumer fail, if anything did
    delivered, read = consumed.delivered, consumed.read
    latencies = sorted(
        (delivered[order_id] - at) * 1000
        for order_id, at in answered.items()
        if order_id in delivered
    )
    return Delivery(
        creates=creates,
        probes=len(answered),
        delivered=len(latencies),
        p50_ms=percentile(latencies, 50) if latencies else float("nan"),
        p99_ms=percentile(latencies, 99) if latencies else float("nan"),
        max_ms=latencies[-1] if latencies else float("nan"),
        events_read=read,
    )


# -- what notifying costs ------------------------------------------------------------------


async def _creates_per_second(store: EventStore, connections: int, seconds: float) -> float:
    creator = OrderCreator(store, inline_projection=projections.orders.INLINE, remembered=0)
    stop_at = time.monotonic() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            await creator.create(f"bench-{uuid.uuid4()}", _REQUEST)
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return done / (time.monotonic() - started)


async def measure_notify_cost(
    url: str, connections: int, seconds: float, rounds: int = 2
) -> NotifyCost:
    pool = await create_pool(url, size=10)
    try:
        with_notify: list[float] = []
        without: list[float] = []
        for _ in range(rounds):
            notifier = AppendNotifier(url)
            notifier.start()
            try:
                with_notify.append(
                    await _creates_per_second(EventStore(pool, notifier), connections, seconds)
                )
            finally:
                await notifier.stop()
            without.append(await _creates_per_second(EventStore(pool), connections, seconds))
    finally:
        await pool.close()
    rate_with, rate_without = sum(with_notify) / rounds, sum(without) / rounds
    return NotifyCost(
        connections=connections,
        seconds_per_round=seconds,
        rounds=rounds,
        with_notify_per_second=rate_with,
        without_notify_per_second=rate_without,
        ratio=rate_with / rate_without if rate_without else float("nan"),
    )


def run(seconds: float, connections: int, probes_per_second: float) -> Result:
    with (
        postgres(os.environ.get("DATABASE_URL")) as (url, _),
        tempfile.TemporaryDirectory(prefix="bench-feed-") as scratch,
    ):
        asyncio.run(migrate_database(url))
        with serve(url, workers=2, pool_size=10, log=Path(scratch) / "serve.log") as service:
            delivery = asyncio.run(
                measure_delivery(service.base_url, connections, seconds, probes_per_second)
            )
        cost = asyncio.run(measure_notify_cost(url, connections, seconds / 2))
    return Result(delivery, cost)


def render(result: Result) -> str:
    d, c, n = result.delivery, result.delivery.creates, result.notify_cost
    return "\n".join(
        [
            f"creates: {c.rate:,.0f}/s over {c.seconds:.1f} s ({c.generator}, {c.connections} "
            f"connections), p99 {c.p99_ms:.1f} ms, {c.errors} errors",
            f"feed long-poll delivery, create answered -> event delivered, {d.delivered} of "
            f"{d.probes} probes ({d.events_read:,} events read):",
            f"  p50 {d.p50_ms:.1f} ms, p99 {d.p99_ms:.1f} ms, max {d.max_ms:.1f} ms "
            "(target: p99 < 250 ms)",
            f"inline creates at {n.connections} concurrent, {n.rounds} rounds of "
            f"{n.seconds_per_round:.1f} s: {n.with_notify_per_second:,.0f}/s notifying, "
            f"{n.without_notify_per_second:,.0f}/s without: {n.ratio:.2f}x",
        ]
    )


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--probes-per-second", type=float, default=20.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.seconds, args.connections, args.probes_per_second)
    print(render(result))
    save_json(args.output, result)
    return result


if __name__ == "__main__":
    main()
