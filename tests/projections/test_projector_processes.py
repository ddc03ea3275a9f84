"""`orders project` as real processes: it keeps the read model equal to the fold of the events
under concurrent creates, survives SIGKILL mid-way, and a standby takes over from a dead leader."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio

from orders.create_order import OrderCreator
from orders.eventstore import EventStore
from orders.eventstore.notify import AppendNotifier
from tests.processes.services import free_port
from tests.projections.support import (
    OrdersProcess,
    assert_read_model_is_the_fold,
    caught_up,
    checkpoint_position,
    create_orders,
    eventually,
    leader,
    orders_process,
)

pytestmark = pytest.mark.slow


@pytest_asyncio.fixture(loop_scope="session")
async def creator(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[OrderCreator]:
    """Creates orders as the API does in async mode: append only, then NOTIFY."""
    notifier = AppendNotifier(database_url)
    notifier.start()
    yield OrderCreator(EventStore(pool, notifier))
    await notifier.stop()


async def test_concurrent_creates_while_the_projector_runs_end_in_the_fold(
    database_url: str, pool: asyncpg.Pool, creator: OrderCreator, tmp_path: Path
) -> None:
    port = free_port()
    with orders_process(
        database_url, tmp_path, "project", "--batch", "7", "--metrics-port", str(port)
    ) as projector:
        keys = await create_orders(creator, 300, concurrency=16)
        await eventually(lambda: caught_up(pool), f"caught up\n{projector.log_text()}")

        async with httpx.AsyncClient() as client:

            async def lag_metric_is_zero() -> bool:
                try:
                    text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                except httpx.TransportError:
                    return False
                return (
                    'orders_projection_lag_events{projection="orders"} 0.0' in text
                    and 'orders_projection_leader{projection="orders"} 1.0' in text
                )

            await eventually(lag_metric_is_zero, "the lag metric reports zero")

    rows = await assert_read_model_is_the_fold(pool)
    assert {request_id for _, request_id, *_ in rows.values()} >= set(keys)


async def test_a_projector_killed_mid_way_resumes_from_its_checkpoint(
    database_url: str, pool: asyncpg.Pool, creator: OrderCreator, tmp_path: Path
) -> None:
    await create_orders(creator, 1500, concurrency=16)
    before = await checkpoint_position(pool)
    with orders_process(database_url, tmp_path, "project", "--batch", "5") as first:

        async def started() -> bool:
            return await checkpoint_position(pool) > before

        await eventually(started, f"the projector started\n{first.log_text()}")
        first.kill()
    assert not await caught_up(pool), "the projector finished before the kill: nothing tested"

    with orders_process(database_url, tmp_path, "project", "--batch", "5") as second:
        await eventually(lambda: caught_up(pool), f"caught up again\n{second.log_text()}")

    await assert_read_model_is_the_fold(pool)


async def test_a_standby_projector_takes_over_when_the_leader_is_killed(
    database_url: str, pool: asyncpg.Pool, creator: OrderCreator, tmp_path: Path
) -> None:
    args = ("project", "--batch", "50", "--metrics-port", "0")
    with (
        orders_process(database_url, tmp_path, *args) as first,
        orders_process(database_url, tmp_path, *args) as second,
    ):
        processes = {p.process.pid: p for p in (first, second)}

        async def someone_leads() -> bool:
            return await leader(pool) in processes

        await eventually(someone_leads, "a projector leads")
        doomed: OrdersProcess = processes.pop(await leader(pool) or 0)
        (standby,) = processes.values()
        await create_orders(creator, 50)
        await eventually(lambda: caught_up(pool), "the leader projects")

        doomed.kill()
        await create_orders(creator, 50)

        async def standby_leads() -> bool:
            return await leader(pool) == standby.process.pid

        await eventually(standby_leads, f"the standby leads\n{standby.log_text()}")
        await eventually(lambda: caught_up(pool), "the new leader catches up")

    await assert_read_model_is_the_fold(pool)
