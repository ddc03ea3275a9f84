"""`orders project`: the catch-up worker of the async projection.

Any number may run; one leads. Leadership is a session advisory lock held on a dedicated
connection: when the leader dies its session ends, PostgreSQL releases the lock, and a waiting
worker (retrying every poll interval) takes over from the checkpoint in the database. Two
leaders at once (a leader cut off from the database while its batch still commits) cannot
corrupt the table: the projection is idempotent and the checkpoint only moves forward.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import asyncpg
from prometheus_client import Counter, Gauge

import projections.orders
from orders.eventstore import sql as store_sql
from orders.eventstore.notify import CHANNEL as APPENDED_CHANNEL
from orders.eventstore.pool import connect
from projections import catchup, sql
from projections.wakeup import RECOVERABLE, Backoff, Wakeups, wait_for

log = logging.getLogger(__name__)

LAG_EVENTS = Gauge("orders_projection_lag_events", "Events not yet projected", ["projection"])
LAG_SECONDS = Gauge(
    "orders_projection_lag_seconds", "Age of the oldest event not yet projected", ["projection"]
)
LEADING = Gauge("orders_projection_leader", "1 while this worker leads", ["projection"])
PROJECTED = Counter("orders_projection_events_total", "Events applied", ["projection"])

# Lag is measured at most this often while batches follow each other back to back.
_LAG_EVERY_SECONDS = 1.0


class Projector:
    """Keeps the `orders` projection caught up until `stop` is set."""

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 500,
        poll_seconds: float = 0.5,
        log_every_seconds: float = 10.0,
    ) -> None:
        self._url = url
        self._poll_seconds = poll_seconds
        self._log_every_seconds = log_every_seconds
        self._name = projections.orders.NAME
        self._checkpoint = projections.orders.CHECKPOINT
        self._catch_up = catchup.CatchUp(
            projections.orders.INLINE, self._checkpoint, batch_size, also_advances=(self._name,)
        )
        self._application_name = f"orders-project-{os.getpid()}"

    async def run(self, stop: asyncio.Event) -> None:
        """Lead (or wait to lead) and project; reconnect with backoff whenever the database
        goes away."""
        backoff = Backoff()
        while not stop.is_set():
            try:
                await self._lead(stop, backoff)
            except RECOVERABLE as exc:
                delay = backoff.delay()
                log.warning(
                    "projector lost the database, reconnecting",
                    extra={"error": type(exc).__name__, "retry_in_seconds": round(delay, 2)},
                )
                await wait_for(stop, delay)
            finally:
                LEADING.labels(self._name).set(0)

    async def _lead(self, stop: asyncio.Event, backoff: Backoff) -> None:
        lock_conn = await connect(self._url, application_name=self._application_name)
        try:
            if not await self._win_leadership(lock_conn, stop):
                return
            wakeups = Wakeups()
            await lock_conn.add_listener(APPENDED_CHANNEL, wakeups.notify)
            work_conn = await connect(self._url, application_name=self._application_name)
            try:
                LEADING.labels(self._name).set(1)
                log.info("projector leads", extra={"projection": self._name})
                await self._project(lock_conn, work_conn, wakeups, stop, backoff)
            finally:
                work_conn.terminate()
        finally:
            lock_conn.terminate()

    async def _win_leadership(self, lock_conn: asyncpg.Connection, stop: asyncio.Event) -> bool:
        """Wait for the leader lock; False if told to stop first."""
        # Its own checkpoint's lock, not the previous release's (`project:orders`): during a
        # rollout both lead at once, each keeping its own checkpoint (see projections.orders).
        lock_name = f"project:{self._checkpoint}"
        announced = False
        while not await lock_conn.fetchval(sql.TRY_LOCK, lock_name):
            if not announced:
                log.info("another projector leads; standing by", extra={"projection": self._name})
                announced = True
            if await wait_for(stop, self._poll_seconds):
                return False
        return True

    async def _project(
        self,
        lock_conn: asyncpg.Connection,
        work_conn: asyncpg.Connection,
        wakeups: Wakeups,
        stop: asyncio.Event,
        backoff: Backoff,
    ) -> None:
        checkpoint = await self._catch_up.checkpoint(work_conn)
        measured = logged = 0.0
        while not stop.is_set():
            woken = wakeups.next()
            batch = await self._catch_up.step(work_conn, checkpoint)
            checkpoint = batch.checkpoint
            backoff.reset()
            if batch.events:
                PROJECTED.labels(self._name).inc(batch.events)
                await work_conn.execute(store_sql.NOTIFY, sql.PROJECTED_CHANNEL)
            full = batch.events == self._catch_up.batch_size
            now = time.monotonic()
            if not full or now - measured >= _LAG_EVERY_SECONDS:
                measured = now
                lag = await catchup.lag(work_conn, self._checkpoint)
                LAG_EVENTS.labels(self._name).set(lag.events)
                LAG_SECONDS.labels(self._name).set(lag.seconds)
                if now - logged >= self._log_every_seconds:
                    logged = now
                    log.info(
                        "projection lag",
                        extra={
                            "projection": self._name,
                            "lag_events": lag.events,
                            "lag_seconds": round(lag.seconds, 3),
                            "checkpoint": checkpoint.position,
                        },
                    )
            if full:
                continue
            if not await wait_for(woken, self._poll_seconds):
                # Quiet for a whole interval: make sure the lock's session is still alive, or
                # another worker may lead by now.
                await lock_conn.execute("SELECT 1")
