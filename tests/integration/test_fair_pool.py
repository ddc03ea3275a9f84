"""The fair pool's gate holds for every way in (see also the ordering test in
test_event_store_contract.py): asyncpg's query helpers pass it too, a wait for a connection
gives up after the pool's timeout, and a double release does not make room that is not there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable

import asyncpg
import pytest_asyncio

from orders.eventstore.pool import create_pool

TIMEOUT_SECONDS = 0.2
HANG = 10.0
"""Far beyond TIMEOUT_SECONDS: a wait still running by then would have waited for ever."""


@pytest_asyncio.fixture
async def pool_of_one(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, size=1, timeout_seconds=TIMEOUT_SECONDS)
    yield pool
    await pool.close()


async def _gives_up(waiting: Awaitable[object]) -> bool:
    """Whether `waiting` fails with TimeoutError on its own (within HANG seconds)."""
    task = asyncio.ensure_future(waiting)
    done, _ = await asyncio.wait({task}, timeout=HANG)
    if not done:
        task.cancel()
        return False
    return isinstance(task.exception(), TimeoutError)


async def test_a_query_waiting_for_a_busy_pool_gives_up_after_the_timeout(
    pool_of_one: asyncpg.Pool,
) -> None:
    async with pool_of_one.acquire():
        assert await _gives_up(pool_of_one.fetchval("SELECT 1"))
        assert await _gives_up(pool_of_one.execute("SELECT 1"))
    assert await pool_of_one.fetchval("SELECT 1") == 1


async def test_releasing_a_connection_twice_frees_one_place(
    pool_of_one: asyncpg.Pool,
) -> None:
    connection = await pool_of_one.acquire()
    await pool_of_one.release(connection)
    await pool_of_one.release(connection)

    async with pool_of_one.acquire():
        assert await _gives_up(pool_of_one.fetchval("SELECT 1"))
