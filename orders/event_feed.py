"""The store's events a page at a time, in the store's gap-free read order, with long-polling.

A page is `EventStore.read_all` after a place: every event in (tx_id, position) order below the
oldest running transaction, so a transaction that took a low position and commits late is
served after it commits, never skipped. A request that finds nothing may wait for the next
append: it is woken by the store's notification (`orders.eventstore.notify.CHANNEL`), heard by
one listening connection per process shared by every waiting request, and re-reads at least
every `poll_seconds` in case a notification is lost. A waiting request holds no pool
connection, only while it reads. A page is answered only once the synchronous standbys hold
its events (`EventStore.ensure_replicated`): a consumer never hears of an event a failover may
yet lose. `close()` (at shutdown) answers every waiting request at
once with what it has: nothing, and the place it asked from.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from orders.eventstore import EventStore, Position, RecordedEvent
from orders.eventstore.notify import CHANNEL
from projections.wakeup import Listener, Wakeups, wait_for


class FeedPage(NamedTuple):
    events: list[RecordedEvent]
    next: Position
    """Where the next page starts: the last event's place, or the place asked from."""


class EventFeed:
    def __init__(self, store: EventStore, url: str, *, poll_seconds: float = 1.0) -> None:
        self._store = store
        self._poll_seconds = poll_seconds
        self._wakeups = Wakeups()
        self._listener = Listener(url, CHANNEL, self._wakeups)
        self._listening = False
        self._closing = False

    async def page(self, after: Position, limit: int, wait_seconds: float = 0.0) -> FeedPage:
        """Up to `limit` events after `after`; when there are none, wait up to `wait_seconds`
        for some. StoreUnavailable if the database fails."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            # Taken before the read: a notification that arrives during it is not lost.
            woken = self._wakeups.next()
            events = await self._store.read_all(after, limit)
            remaining = deadline - loop.time()
            if events:
                # Handed on to other services: only once a failover cannot take them back.
                await self._store.ensure_replicated()
                return FeedPage(events, events[-1].checkpoint)
            if remaining <= 0 or self._closing:
                return FeedPage(events, after)
            self._listen()
            await wait_for(woken, min(self._poll_seconds, remaining))
            if self._closing:
                return FeedPage([], after)

    def _listen(self) -> None:
        """Start listening with the first request that waits: a process whose feed nobody
        long-polls holds no extra connection."""
        if not self._listening:
            self._listening = True
            self._listener.start()

    def close(self) -> None:
        """Answer every waiting request now, and let none wait from here on."""
        self._closing = True
        self._wakeups.notify()

    async def stop(self) -> None:
        self.close()
        if self._listening:
            await self._listener.stop()
