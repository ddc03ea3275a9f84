"""Wake subscribers after appends without slowing the appends down.

A NOTIFY inside the appending transaction takes a cluster-wide lock at commit, which
serialises every commit: measured here it cut one-row inserts from ~16,800/s to ~4,500/s.
So appends only `poke()`; one task per process sends NOTIFY from its own statement, and every
poke that arrives while a NOTIFY is in flight is covered by the next one. Polling stays the
path that guarantees delivery; a notification only shortens the wait.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from orders.background import BackgroundTask
from orders.eventstore import sql

CHANNEL = "orders_events"

log = logging.getLogger(__name__)


class AppendNotifier:
    def __init__(self, pool: asyncpg.Pool, channel: str = CHANNEL) -> None:
        self._pool = pool
        self._channel = channel
        self._pending = asyncio.Event()
        self._task = BackgroundTask("append-notifier", self._run)

    def poke(self) -> None:
        """Note that events were appended; a NOTIFY follows soon."""
        self._pending.set()

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        while True:
            await self._pending.wait()
            self._pending.clear()
            try:
                await self._pool.execute(sql.NOTIFY, self._channel)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # Subscribers poll as well; a lost wake-up only delays them.
                log.warning("append notification failed: %s", type(exc).__name__)
