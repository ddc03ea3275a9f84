"""Long-polling, each test on a service of its own: a caught-up consumer is woken by the store's
notification as soon as an event is recorded, through one listening connection per process,
and a waiting request holds no pool connection; shutdown answers every waiting request at
once."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx

from orders.settings import Settings
from tests.api.helpers import new_key, order_body, post_order
from tests.feed.feed import Page, page_of, read_to_the_end, service
from tests.projections.support import eventually

LISTENER = "orders-listen-orders_events"
# Longer than any wait here: only a notification can end a wait early.
NO_POLLING = Settings(pool_size=4, feed_poll_seconds=300)


async def listeners(pool: asyncpg.Pool) -> int:
    """Sessions on this database that listen for appends on behalf of a feed."""
    count: int = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = $1 AND query = 'LISTEN \"orders_events\"'",
        LISTENER,
    )
    return count


async def no_listener(pool: asyncpg.Pool) -> bool:
    return await listeners(pool) == 0


async def long_poll(client: httpx.AsyncClient, caught_up: Page, wait: int) -> httpx.Response:
    return await client.get(f"{caught_up.next}&wait={wait}", timeout=wait + 30)


async def test_a_waiting_consumer_gets_a_new_event_long_before_the_wait_ends(
    database_url: str, pool: asyncpg.Pool
) -> None:
    wait = 20
    await eventually(lambda: no_listener(pool), "an earlier service's listener is gone")
    async with service(database_url, NO_POLLING) as (_, client):
        _, caught_up = await read_to_the_end(client)
        started = time.monotonic()
        waiting = asyncio.create_task(long_poll(client, caught_up, wait))
        await eventually(lambda: listeners_at_least(pool, 1), "the long-poll waits")

        created = await post_order(client, order_body(), new_key())
        page = page_of(await waiting)
        elapsed = time.monotonic() - started

    assert created.status_code == 201
    assert [event["subject"] for event in page.events] == [created.json()["order_id"]]
    assert elapsed < wait / 2
    assert page.cursor != caught_up.cursor


async def listeners_at_least(pool: asyncpg.Pool, n: int) -> bool:
    return await listeners(pool) >= n


async def test_many_waiting_consumers_share_one_listener_and_hold_no_pool_connection(
    database_url: str, pool: asyncpg.Pool
) -> None:
    consumers, wait = 8, 20
    # Two connections for eight waiting requests: a waiting request that held one would leave
    # the create none (it would answer 503 after ORDERS_DB_TIMEOUT_SECONDS).
    settings = Settings(pool_size=2, feed_poll_seconds=300, db_timeout_seconds=2)
    await eventually(lambda: no_listener(pool), "an earlier service's listener is gone")
    async with service(database_url, settings) as (_, client):
        _, caught_up = await read_to_the_end(client)
        waiting = [
            asyncio.create_task(long_poll(client, caught_up, wait)) for _ in range(consumers)
        ]
        await eventually(lambda: listeners_at_least(pool, 1), "the long-polls wait")

        created = await post_order(client, order_body(), new_key())
        pages = [page_of(answer) for answer in await asyncio.gather(*waiting)]
        assert await listeners(pool) == 1

    assert created.status_code == 201, created.text
    order_id = created.json()["order_id"]
    assert all([event["subject"] for event in page.events] == [order_id] for page in pages)


async def test_shutdown_answers_a_waiting_long_poll_at_once(
    database_url: str, pool: asyncpg.Pool
) -> None:
    wait = 30
    await eventually(lambda: no_listener(pool), "an earlier service's listener is gone")
    async with service(database_url, NO_POLLING) as (_, client):
        _, caught_up = await read_to_the_end(client)
        waiting = asyncio.create_task(long_poll(client, caught_up, wait))
        await eventually(lambda: listeners_at_least(pool, 1), "the long-poll waits")
        started = time.monotonic()
    # The service has stopped (its lifespan ended) with the request in flight.
    page = page_of(await waiting)

    assert time.monotonic() - started < wait / 3
    assert page.events == [] and page.cursor == caught_up.cursor
