"""`orders project`: the catch-up worker of the async projection.

Any number may run; one leads (`projections.leadership`). Two leaders at once (a leader cut
off from the database while its batch still commits) cannot corrupt the table: the projection
is idempotent and the checkpoint only moves forward.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from prometheus_client import Counter, Gauge

import projections.orders
from orders.eventstore import sql as store_sql
from projections import catchup, sql
from projections.leadership import Leadership, Term
from projections.wakeup import wait_for

log = logging.getLogger(__name__)

LAG_EVENTS = Gauge("orders_projection_lag_events", "Events not yet projected", ["projection"])
LAG_SECONDS = Gauge(
    "orders_projection_lag_seconds", "Age of the oldest event not yet projected", ["projection"]
)
LEADING = Gauge("orders_projection_leader", "1 while this worker leads", ["projection"])
PROJECTED = Counter("orders_projection_events_total", "Events applied", ["projection"])


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
        # Its own checkpoint's lock, not the previous release's (`project:orders`): during a
        # rollout both lead at once, each keeping its own checkpoint (see projections.orders).
        leadership = Leadership(
            self._url,
            f"project:{self._checkpoint}",
            role="projector",
            application_name=self._application_name,
            poll_seconds=self._poll_seconds,
            on_change=LEADING.labels(self._name).set,
        )
        await leadership.run(self._project, stop)

    async def _project(self, term: Term, stop: asyncio.Event) -> None:
        work_conn = term.conn
        checkpoint = await self._catch_up.checkpoint(work_conn)
        lag_meter = catchup.LagMeter(self._checkpoint)
        logged = 0.0
        while not stop.is_set():
            woken = term.wakeups.next()
            batch = await self._catch_up.step(work_conn, checkpoint)
            checkpoint = batch.checkpoint
            term.backoff.reset()
            if batch.events:
                PROJECTED.labels(self._name).inc(batch.events)
                await work_conn.execute(store_sql.NOTIFY, sql.PROJECTED_CHANNEL)
            full = batch.events == self._catch_up.batch_size
            lag = await lag_meter.after_step(work_conn, full=full)
            if lag is not None:
                LAG_EVENTS.labels(self._name).set(lag.events)
                LAG_SECONDS.labels(self._name).set(lag.seconds)
                now = time.monotonic()
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
                await term.keep_alive()
