"""asyncpg's pool, handing out connections first come, first served."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

if TYPE_CHECKING:
    _Pool = asyncpg.Pool[asyncpg.Record]
else:  # asyncpg's Pool is generic only in its type stubs
    _Pool = asyncpg.Pool


class FairPool(_Pool):
    """A pool whose waiters get connections in the order they asked.

    asyncpg's pool waits on an asyncio.Queue: a coroutine that asks just as a connection comes
    back takes it ahead of the waiter woken for it, which then queues again at the back. Under
    load a few requests lose that race many times: measured at 64 connections on 2 workers,
    creates had p99 111 ms at p50 17 ms. A semaphore as wide as the pool, which admits its
    waiters in order and lets no newcomer pass them, guards the pool, so by the time a request
    reaches the queue a connection is free for it (p99 37 ms, same throughput).

    Waiting at the gate is bounded by `acquire_timeout`: TimeoutError, which the store reports
    as StoreUnavailable, rather than a request that hangs while the database is stuck.
    """

    def __init__(self, dsn: str, *, acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(dsn, **kwargs)
        self._gate = asyncio.Semaphore(kwargs["max_size"])
        self._acquire_timeout = acquire_timeout

    # The two overrides keep asyncpg's signatures, `timeout` parameters included.
    async def _acquire(self, timeout: float | None) -> PoolConnectionProxy[asyncpg.Record]:  # noqa: ASYNC109
        async with asyncio.timeout(self._acquire_timeout):
            await self._gate.acquire()
        try:
            connection: PoolConnectionProxy[asyncpg.Record] = await super()._acquire(  # type: ignore[misc]
                timeout
            )
        except BaseException:
            self._gate.release()
            raise
        return connection

    async def release(
        self,
        connection: PoolConnectionProxy[asyncpg.Record],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> None:
        try:
            await super().release(connection, timeout=timeout)
        finally:
            self._gate.release()
