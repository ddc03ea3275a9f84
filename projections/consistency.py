"""Read-your-writes over an asynchronous projection.

A read must reflect every write acknowledged before it began. In async mode the projector
applies writes a little later, so a read first waits, boundedly, until the projection's
checkpoint covers every event that was visible when the read began (see `sql.CAUGHT_UP`).
"""

from __future__ import annotations

import asyncio

import asyncpg

from orders.eventstore.store import driver_errors
from projections import sql
from projections.wakeup import Listener, Wakeups, wait_for


class ProjectionBehind(Exception):
    """The projection did not catch up with the read's start within the allowed wait."""


class ReadYourWrites:
    """Waits until the projection `checkpoint_name` covers the store as of the call.

    Wakes on the projector's notifications (one listening connection per process, from
    `start()` to `close()`) and, in case one is lost, re-checks every `poll_seconds`.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        url: str,
        *,
        checkpoint_name: str,
        wait_seconds: float,
        poll_seconds: float = 0.05,
    ) -> None:
        self._pool = pool
        self._wakeups = Wakeups()
        self._listener = Listener(url, sql.PROJECTED_CHANNEL, self._wakeups)
        self._checkpoint_name = checkpoint_name
        self._wait_seconds = wait_seconds
        self._poll_seconds = poll_seconds

    def start(self) -> None:
        self._listener.start()

    async def close(self) -> None:
        await self._listener.stop()

    async def wait(self) -> None:
        """Return once the projection holds every write acknowledged before this call.

        Raises ProjectionBehind after `wait_seconds`, StoreUnavailable if the database fails.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_seconds
        head: int | None = None
        while True:
            woken = self._wakeups.next()
            with driver_errors(None):
                row = await self._pool.fetchrow(sql.CAUGHT_UP, self._checkpoint_name, head)
            assert row is not None
            if row["caught_up"]:
                return
            head = row["head"]
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ProjectionBehind(
                    f"the {self._checkpoint_name} projection is behind position {head}"
                )
            await wait_for(woken, min(self._poll_seconds, remaining))
