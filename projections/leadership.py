"""One leader among any number of replicas of a catch-up worker (`orders project`,
`orders publish`), and the reconnect-with-backoff loop around it.

Leadership is a session advisory lock held on a dedicated connection: when the leader dies its
session ends, PostgreSQL releases the lock, and a waiting replica (retrying every poll interval)
takes over from the checkpoint in the database. The same connection listens for the store's
appends, so a leader wakes on a notification and polls as the guarantee. Two leaders at once (a
leader cut off from the database while its last batch still finishes) must be harmless to the
work itself: the projection is idempotent, a re-publication carries the same ids, and both
checkpoints only move forward.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from orders.eventstore.notify import CHANNEL as APPENDED_CHANNEL
from orders.eventstore.pool import connect
from projections import sql
from projections.wakeup import RECOVERABLE, Backoff, Wakeups, wait_for

log = logging.getLogger(__name__)


@dataclass
class Term:
    """What a leader works with while it leads."""

    conn: asyncpg.Connection
    """Its working connection (the lock's own stays idle but for `keep_alive`)."""

    wakeups: Wakeups
    """Set by every notification of an append."""

    backoff: Backoff
    """Reset it after a successful step, so the next reconnection starts with a short delay."""

    _lock_conn: asyncpg.Connection

    async def keep_alive(self) -> None:
        """Make sure the lock's session is still alive (else another replica may lead by now):
        call it after a quiet interval."""
        await self._lock_conn.execute("SELECT 1")


Work = Callable[[Term, asyncio.Event], Awaitable[None]]
"""A leader's work: runs until the event (stop) is set, or raises to give up its term."""


class Leadership:
    """Runs `work` whenever this replica holds the lock `lock_name`, until `stop` is set;
    reconnects with backoff whenever the database goes away (or `work` raises one of
    `recoverable`)."""

    def __init__(
        self,
        url: str,
        lock_name: str,
        *,
        role: str,
        application_name: str,
        poll_seconds: float,
        on_change: Callable[[bool], None],
        on_standby: Callable[[], None] = lambda: None,
        recoverable: tuple[type[BaseException], ...] = (),
    ) -> None:
        self._url = url
        self._lock_name = lock_name
        self._role = role
        self._application_name = application_name
        self._poll_seconds = poll_seconds
        self._on_change = on_change
        self._on_standby = on_standby
        self._recoverable = RECOVERABLE + recoverable

    async def run(self, work: Work, stop: asyncio.Event) -> None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                await self._term(work, stop, backoff)
            except self._recoverable as exc:
                delay = backoff.delay()
                log.warning(
                    "%s lost the database, reconnecting",
                    self._role,
                    extra={"error": type(exc).__name__, "retry_in_seconds": round(delay, 2)},
                )
                await wait_for(stop, delay)
            finally:
                self._on_change(False)

    async def _term(self, work: Work, stop: asyncio.Event, backoff: Backoff) -> None:
        lock_conn = await connect(self._url, application_name=self._application_name)
        try:
            if not await self._win(lock_conn, stop):
                return
            wakeups = Wakeups()
            await lock_conn.add_listener(APPENDED_CHANNEL, wakeups.notify)
            work_conn = await connect(self._url, application_name=self._application_name)
            try:
                self._on_change(True)
                log.info("%s leads", self._role, extra={"lock": self._lock_name})
                await work(Term(work_conn, wakeups, backoff, lock_conn), stop)
            finally:
                work_conn.terminate()
        finally:
            lock_conn.terminate()

    async def _win(self, lock_conn: asyncpg.Connection, stop: asyncio.Event) -> bool:
        """Wait for the leader lock; False if told to stop first."""
        announced = False
        while not await lock_conn.fetchval(sql.TRY_LOCK, self._lock_name):
            if not announced:
                log.info("another %s leads; standing by", self._role)
                announced = True
            self._on_standby()
            if await wait_for(stop, self._poll_seconds):
                return False
        return True
