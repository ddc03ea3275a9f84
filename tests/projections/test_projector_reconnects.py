"""`orders project` outlives a PostgreSQL restart: it reconnects with backoff and carries on
from its checkpoint. The test owns its server, so restarting it disturbs no other test."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orders.create_order import OrderCreator
from orders.database import migrate_database
from orders.eventstore import EventStore
from orders.eventstore.pool import create_pool
from tests.processes.services import embedded_server
from tests.projections.support import (
    assert_read_model_is_the_fold,
    caught_up,
    create_orders,
    eventually,
    orders_process,
)

pytestmark = pytest.mark.slow


async def test_the_projector_reconnects_after_a_database_restart(tmp_path: Path) -> None:
    async with embedded_server() as server:
        url = server.url
        await migrate_database(url)
        args = ("project", "--poll-seconds", "0.2", "--metrics-port", "0")
        with orders_process(url, tmp_path, *args) as projector:
            pool = await create_pool(url, size=4)
            try:
                await create_orders(OrderCreator(EventStore(pool)), 20)
                await eventually(lambda: caught_up(pool), "caught up before the restart")
            finally:
                await pool.close()

            await asyncio.to_thread(server.restart)

            pool = await create_pool(url, size=4)
            try:
                await create_orders(OrderCreator(EventStore(pool)), 20)
                await eventually(
                    lambda: caught_up(pool), f"caught up after the restart\n{projector.log_text()}"
                )
                await assert_read_model_is_the_fold(pool)
            finally:
                await pool.close()
            assert projector.process.poll() is None, "the projector exited"
            assert "projector lost the database, reconnecting" in projector.log_text()
