"""`orders publish`: every event of the store, published to RabbitMQ, at least once, in order.

One more catch-up reader of the store: it reads batches in the store's gap-free
`(tx_id, position)` order below the snapshot's xmin (`sql.READ_ALL`), publishes each batch
(`orders.publishing.amqp`) and moves its own checkpoint (`publish:amqp` in
`projection_checkpoints`, forward only) only once the broker has confirmed every message of
the batch. So a crash anywhere re-sends at most the batch in hand, with the same ids; a nack, a
return, a confirm timeout or a lost connection stops the batch, and the same batch is tried
again from the checkpoint on a new connection after a backoff: nothing is skipped, nothing
moves on. Any number may run; one leads (`projections.leadership`).

While the broker confirms a full batch, the publisher reads the next one from the store and
builds its messages (`_read`), but sends it only once the batch before is confirmed and
checkpointed: the broker never holds more than one unconfirmed batch, so the bound on re-sends
stays one batch, and in a backlog the reading no longer waits its turn after the confirms.
After a batch that was not full (caught up), the checkpoint moves at once and the next batch
is read no sooner than `linger_seconds` after the one before was sent. Much of a batch's cost
is per batch, not per event (round trips, a checkpoint commit, the broker's fsync): caught up
under 64 connections of creates (bench.publish), batches of 38 events cost the publisher 134
us and the broker 146 us an event; with a 50 ms linger, batches of 172 cost 63 and 97, CPU
left to the service, for up to 50 ms more latency; the first event after a quiet spell goes
at once. The lag is counted at most once a second while batches follow each other (the count
would cost as much as a small batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import NamedTuple

from prometheus_client import Counter, Gauge, Histogram

from orders.eventstore import Position, StoreUnavailable
from orders.eventstore import sql as store_sql
from orders.eventstore.store import BarrierMode, ensure_replicated, recorded_event
from orders.publishing.amqp import (
    BATCH_FAILURES,
    BROKER_FAILURES,
    Broker,
    Message,
    Unroutable,
    amqp_message,
)
from orders.publishing.cloudevents import cloud_event
from orders.publishing.health import Heartbeat
from projections import sql
from projections.catchup import Lag, LagMeter, lag, stored_checkpoint
from projections.leadership import Leadership, Term
from projections.wakeup import Backoff, wait_for

log = logging.getLogger(__name__)

CHECKPOINT = "publish:amqp"
"""The publisher's row in `projection_checkpoints`, and the name of its leader lock."""

PUBLISHED = Counter("orders_publish_events", "Events the broker confirmed")
BATCHES = Counter("orders_publish_batches", "Batches published, by outcome", ["outcome"])
CONFIRM_SECONDS = Histogram(
    "orders_publish_confirm_seconds",
    "From a batch's first publish to its last confirm",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
LAG_EVENTS = Gauge("orders_publish_lag_events", "Events not yet confirmed by the broker")
LAG_SECONDS = Gauge(
    "orders_publish_lag_seconds", "Age of the oldest event not yet confirmed by the broker"
)
LEADING = Gauge("orders_publish_leader", "1 while this publisher leads")
UNROUTABLE = Counter(
    "orders_publish_unroutable",
    "Messages the broker returned: no queue took them, not even the unrouted one",
)
for _outcome in ("confirmed", "failed"):
    BATCHES.labels(_outcome)


def _show(measured: Lag) -> None:
    LAG_EVENTS.set(measured.events)
    LAG_SECONDS.set(measured.seconds)


class Publisher:
    """Publishes the store's events until `stop` is set."""

    def __init__(
        self,
        url: str,
        amqp_url: str,
        exchange: str,
        *,
        source: str,
        confirm_timeout: float,
        batch_size: int = 500,
        poll_seconds: float = 0.5,
        linger_seconds: float = 0.05,
        replication_barrier: BarrierMode = "auto",
        heartbeat: Heartbeat | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("the batch size must be at least 1")
        self._url = url
        self._amqp_url = amqp_url
        self._exchange = exchange
        self._source = source
        self._confirm_timeout = confirm_timeout
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._linger_seconds = linger_seconds
        self._replication_barrier = replication_barrier
        self.heartbeat = heartbeat or Heartbeat()

    async def run(self, stop: asyncio.Event) -> None:
        leadership = Leadership(
            self._url,
            CHECKPOINT,
            role="publisher",
            application_name=f"orders-publish-{os.getpid()}",
            poll_seconds=self._poll_seconds,
            on_change=LEADING.set,
            on_standby=self.heartbeat.beat,
        )
        await leadership.run(self._lead, stop)

    async def _lead(self, term: Term, stop: asyncio.Event) -> None:
        """Publish while leading; on any broker failure, start over from the checkpoint on a
        new connection after a backoff (a database failure ends the term instead)."""
        backoff = Backoff()
        while not stop.is_set():
            try:
                broker = await Broker.connect(
                    self._amqp_url, self._exchange, confirm_timeout=self._confirm_timeout
                )
            except BROKER_FAILURES as exc:
                await self._back_off(term, stop, backoff, "cannot reach the broker", exc)
                continue
            try:
                await self._publish(term, broker, stop, backoff)
            except BATCH_FAILURES as exc:
                await self._back_off(term, stop, backoff, "batch not confirmed", exc)
            except StoreUnavailable as exc:
                await self._back_off(term, stop, backoff, "standbys did not confirm", exc)
            finally:
                with contextlib.suppress(*BROKER_FAILURES):
                    await broker.close()

    async def _back_off(
        self, term: Term, stop: asyncio.Event, backoff: Backoff, what: str, exc: BaseException
    ) -> None:
        """Wait before trying again from the checkpoint. The lag is measured first, so that
        it grows on the dashboard and fires its alert while the broker stays away (the
        publish loop, which measures it otherwise, is not running). The heartbeat does not
        beat: a leader that fails for a minute is restarted, and a standby that may reach
        the broker from elsewhere takes the lead (deployments/README.md)."""
        delay = backoff.delay()
        log.warning(
            "publisher: %s, retrying from the checkpoint",
            what,
            extra={"error": f"{type(exc).__name__}: {exc}", "retry_in_seconds": round(delay, 2)},
        )
        _show(await lag(term.conn, CHECKPOINT))
        if not await wait_for(stop, delay):
            await term.keep_alive()

    async def _publish(
        self, term: Term, broker: Broker, stop: asyncio.Event, backoff: Backoff
    ) -> None:
        checkpoint = await stored_checkpoint(term.conn, CHECKPOINT)
        lag_meter = LagMeter(CHECKPOINT)
        woken = term.wakeups.next()
        batch = await self._read(term, checkpoint)
        while not stop.is_set():
            following = None
            if batch is not None:
                # The next notification's event is taken before the batch goes, so one that
                # arrives while it is confirmed is not lost.
                woken = term.wakeups.next()
                sent_at = time.perf_counter()
                following = await self._publish_batch(term, broker, batch)
                checkpoint = batch.reached
                backoff.reset()
                term.backoff.reset()
            self.heartbeat.beat()
            measured = await lag_meter.after_step(term.conn, full=batch is not None)
            if measured is not None:
                _show(measured)
            if following is None and batch is not None:
                # Caught up: gather what is committed meanwhile into the next batch.
                await wait_for(stop, sent_at + self._linger_seconds - time.perf_counter())
                following = await self._read(term, checkpoint)
            if following is None:
                if not await wait_for(woken, self._poll_seconds):
                    await term.keep_alive()
                woken = term.wakeups.next()
                following = await self._read(term, checkpoint)
            batch = following

    async def _read(self, term: Term, after: Position) -> _Batch | None:
        """The batch after `after`, as messages (None when there is none)."""
        rows = await term.conn.fetch(
            store_sql.READ_ALL, after.tx_id, after.position, self._batch_size
        )
        if not rows:
            return None
        recorded = [recorded_event(row) for row in rows]
        messages = [amqp_message(cloud_event(r, source=self._source)) for r in recorded]
        return _Batch(messages, recorded[-1].checkpoint)

    async def _publish_batch(self, term: Term, broker: Broker, batch: _Batch) -> _Batch | None:
        """Publish `batch` once the synchronous standbys hold its events, and move the
        checkpoint past it; if it is full (there may be more behind it), read the next one
        while the broker confirms it and return that (None otherwise, or when there was none).

        The barrier comes first: no service hears of an event that a failover may yet take
        back (a cut-off standby stalls publication; a wait for it that was cancelled raises
        StoreUnavailable, and the batch is tried again). It covers every event read before
        it, a batch read ahead included."""
        await ensure_replicated(term.conn, self._replication_barrier)
        started = time.perf_counter()
        ahead: asyncio.Task[_Batch | None] | None = None
        try:
            sent = await broker.send(batch.messages)
            if len(batch.messages) == self._batch_size:
                ahead = asyncio.create_task(self._read(term, batch.reached))
            try:
                await sent.confirmed()
            finally:
                if ahead is not None:
                    # The read ahead runs on the term's connection: it is waited for whatever
                    # the confirms' outcome, so that no statement is left running on it; its
                    # own failure is raised only once this batch is checkpointed.
                    await asyncio.wait([ahead])
        except Unroutable as exc:
            UNROUTABLE.inc(exc.returned)
            BATCHES.labels("failed").inc()
            _forget(ahead)
            raise
        except BATCH_FAILURES:
            BATCHES.labels("failed").inc()
            _forget(ahead)
            raise
        CONFIRM_SECONDS.observe(time.perf_counter() - started)
        reached = batch.reached
        await term.conn.execute(sql.SET_CHECKPOINT, CHECKPOINT, reached.tx_id, reached.position)
        PUBLISHED.inc(len(batch.messages))
        BATCHES.labels("confirmed").inc()
        return None if ahead is None else ahead.result()


def _forget(ahead: asyncio.Task[_Batch | None] | None) -> None:
    """Drop a read ahead of a batch that failed (it is read again from the checkpoint),
    failure and all."""
    if ahead is not None and not ahead.cancelled():
        ahead.exception()


class _Batch(NamedTuple):
    messages: list[Message]
    reached: Position
    """The position of its last event: the checkpoint once it is confirmed."""
