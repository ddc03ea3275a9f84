"""`orders rebuild`: a fresh read model swapped in while writes go on, in either projection mode;
one rebuild at a time; an interrupted rebuild changes nothing live and simply runs again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

import projections.orders
from orders.create_order import OrderCreator
from orders.eventstore import EventStore
from orders.eventstore.pool import connect
from projections.rebuild import Rebuild, rebuild
from tests.projections.support import (
    OrdersProcess,
    assert_read_model_is_the_fold,
    caught_up,
    create_orders,
    eventually,
    move_orders,
    orders_process,
    table,
)

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def projector_if_async(
    mode: str, database_url: str, log_dir: Path
) -> Iterator[OrdersProcess | None]:
    if mode == "inline":
        yield None
        return
    with orders_process(database_url, log_dir, "project", "--metrics-port", "0") as process:
        yield process


@pytest.mark.parametrize("mode", ["inline", "async"])
async def test_a_rebuild_while_clients_create_orders_keeps_every_acknowledged_order(
    mode: str, database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    inline = projections.orders.INLINE if mode == "inline" else ""
    store = EventStore(pool)
    creator = OrderCreator(store, inline_projection=inline)
    acknowledged = await create_orders(creator, 1000, concurrency=16)
    await move_orders(store, acknowledged[:120], then=inline)
    with projector_if_async(mode, database_url, tmp_path) as projector:
        with orders_process(database_url, tmp_path, "rebuild", "--batch", "20") as job:
            while job.process.poll() is None:
                keys = await create_orders(creator, 20, concurrency=8)
                await move_orders(store, keys, then=inline)
                acknowledged += keys
            assert job.wait() == 0, job.log_text()
        acknowledged += await create_orders(creator, 20)
        if projector is not None:
            await eventually(lambda: caught_up(pool), f"caught up\n{projector.log_text()}")

    assert "rebuilt orders:" in job.log_text().splitlines()[-1]
    rows = await assert_read_model_is_the_fold(pool)
    assert {request_id for _, request_id, *_ in rows.values()} >= set(acknowledged)


async def test_a_second_rebuild_exits_with_a_clear_message(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with pool.acquire() as holder:
        running = Rebuild(holder, batch_size=100)
        await running.start()
        try:
            with orders_process(database_url, tmp_path, "rebuild") as second:
                exit_code = await asyncio.to_thread(second.wait)
        finally:
            await running.release()

    assert exit_code == 1
    assert "another rebuild of orders is running" in second.log_text()


async def test_an_interrupted_rebuild_leaves_the_live_tables_untouched_and_runs_again(
    database_url: str, pool: asyncpg.Pool
) -> None:
    await create_orders(
        OrderCreator(EventStore(pool), inline_projection=projections.orders.INLINE), 30
    )
    live_before = await table(pool)
    conn = await connect(database_url)
    try:
        interrupted = Rebuild(conn, batch_size=10)
        await interrupted.start()
        await interrupted.step()
    finally:
        conn.terminate()  # as a crash would: no rollback sent, no lock released by us

    assert await table(pool) == live_before
    assert len(await table(pool, "orders_rebuild")) == 10

    summary = await rebuild(database_url, batch_size=10)

    assert summary.events == len(await EventStore(pool).read_all(limit=100_000))
    await assert_read_model_is_the_fold(pool)
    assert await pool.fetchval("SELECT to_regclass('orders_rebuild')") is None


async def test_the_swap_gives_way_to_a_reader_holding_the_table_then_succeeds(
    database_url: str, pool: asyncpg.Pool
) -> None:
    creator = OrderCreator(EventStore(pool), inline_projection=projections.orders.INLINE)
    await create_orders(creator, 10)
    conn = await connect(database_url)
    try:
        job = Rebuild(conn, batch_size=1000)
        await job.start()
        await job.step()
        async with pool.acquire() as reader, reader.transaction():
            await reader.fetchval("SELECT count(*) FROM orders")  # holds ACCESS SHARE
            assert not await job.swap(lock_timeout_ms=50)
            # The failed swap released events at once: appends go on.
            await create_orders(creator, 5)
        assert await job.swap()
    finally:
        await conn.close()

    await assert_read_model_is_the_fold(pool)


async def test_the_swapped_in_tables_keep_their_grants_and_index_names(
    database_url: str, pool: asyncpg.Pool
) -> None:
    grants = (
        "SELECT has_table_privilege('orders_service', 'orders', 'SELECT, INSERT, UPDATE')"
        " AND has_table_privilege('orders_service', 'order_counts', 'SELECT, INSERT, UPDATE')"
    )

    indexes = (
        "SELECT array_agg(indexname::text ORDER BY indexname) FROM pg_indexes"
        " WHERE tablename IN ('orders', 'order_counts')"
    )
    assert await pool.fetchval(grants)
    names_before = await pool.fetchval(indexes)

    await rebuild(database_url, batch_size=100)
    await rebuild(database_url, batch_size=100)

    assert await pool.fetchval(grants)
    assert await pool.fetchval(indexes) == names_before
