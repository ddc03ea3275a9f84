"""Waking up on PostgreSQL notifications, with reconnection and backoff.

A notification only shortens a wait: every waiter here also wakes after a bounded timeout and
re-checks the database, so a lost notification (or a lost listening connection) costs time,
never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import asyncpg

from orders.background import BackgroundTask
from orders.eventstore.pool import connect

log = logging.getLogger(__name__)

RECOVERABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
    asyncpg.TargetServerAttributeNotMatched,
    asyncpg.ReadOnlySQLTransactionError,
)
"""Failures that a reconnection can cure: the server went away, restarts, or shut us out, or
is not (or no longer) the primary, as during a failover."""


class Wakeups:
    """Notifications on one channel, as events a waiter can take before it checks the
    database: a notification that arrives between the check and the wait is not lost."""

    def __init__(self) -> None:
        self._next = asyncio.Event()

    def next(self) -> asyncio.Event:
        """The event the next notification sets."""
        return self._next

    def notify(self, *_: object) -> None:
        """An asyncpg listener callback (connection, pid, channel, payload)."""
        self._next.set()
        self._next = asyncio.Event()


async def wait_for(event: asyncio.Event, seconds: float) -> bool:
    """Whether `event` was set within `seconds`."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


class Backoff:
    """Exponential delays with jitter between reconnection attempts, reset after a success."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self._first = first
        self._cap = cap
        self._next = first

    def delay(self) -> float:
        current = self._next
        self._next = min(self._cap, current * 2)
        return current * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._next = self._first


class Listener:
    """Keeps one connection listening on `channel` and forwards its notifications to
    `wakeups`, reconnecting with backoff whenever the connection is lost."""

    def __init__(self, url: str, channel: str, wakeups: Wakeups) -> None:
        self._url = url
        self._channel = channel
        self._wakeups = wakeups
        self._task = BackgroundTask(f"listen-{channel}", self._run)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                await self._listen(backoff)
            except RECOVERABLE as exc:
                log.warning("listening on %s failed: %s", self._channel, type(exc).__name__)
            await asyncio.sleep(backoff.delay())

    async def _listen(self, backoff: Backoff) -> None:
        conn = await connect(self._url, application_name=f"orders-listen-{self._channel}")
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _: lost.set())
            await conn.add_listener(self._channel, self._wakeups.notify)
            backoff.reset()
            # Waiters poll meanwhile; wake them now so that none waits out a full timeout for
            # a notification sent while no connection was listening.
            self._wakeups.notify()
            await lost.wait()
        finally:
            conn.terminate()
