"""Whatever the interleaving of creates, lifecycle events, async projector batches (from a live
worker or a restarted one) and a rebuild's steps, the read model ends equal to a fresh fold of
the events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import projections.orders
from orders.create_order import OrderCreator
from orders.eventstore import EventStore, Position
from orders.eventstore.pool import connect
from projections.catchup import CatchUp
from projections.rebuild import Rebuild
from tests.projections.support import assert_read_model_is_the_fold, create_orders, move_orders

BATCH = 3

operation = st.one_of(
    st.tuples(st.just("append"), st.integers(1, 4)),
    st.just(("move",)),
    st.just(("project",)),
    st.just(("restart projector",)),
    st.just(("rebuild start",)),
    st.just(("rebuild step",)),
    st.just(("rebuild swap",)),
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rebuild_conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(database_url)
    yield conn
    await conn.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mode=st.sampled_from(["inline", "async"]), operations=st.lists(operation, max_size=14))
async def test_any_interleaving_ends_in_the_fold_of_all_events(
    pool: asyncpg.Pool,
    rebuild_conn: asyncpg.Connection,
    mode: str,
    operations: list[tuple[str] | tuple[str, int]],
) -> None:
    inline = projections.orders.INLINE if mode == "inline" else ""
    store = EventStore(pool)
    creator = OrderCreator(store, inline_projection=inline)
    projector = CatchUp(projections.orders.INLINE, projections.orders.CHECKPOINT, BATCH)
    unmoved: list[list[str]] = []
    rebuild: Rebuild | None = None
    async with pool.acquire() as projector_conn:
        checkpoint = await projector.checkpoint(projector_conn)

        async def project(after: Position) -> Position:
            return (await projector.step(projector_conn, after)).checkpoint

        for op in operations:
            if op[0] == "append":
                assert len(op) == 2  # only "append" carries a count
                unmoved.append(await create_orders(creator, op[1]))
            elif op == ("move",) and unmoved:
                await move_orders(store, unmoved.pop(0), then=inline)
            elif op == ("project",):
                checkpoint = await project(checkpoint)
            elif op == ("restart projector",):
                checkpoint = await project(await projector.checkpoint(projector_conn))
            elif op == ("rebuild start",) and rebuild is None:
                rebuild = Rebuild(rebuild_conn, batch_size=BATCH)
                await rebuild.start()
            elif op == ("rebuild step",) and rebuild is not None:
                await rebuild.step()
            elif op == ("rebuild swap",) and rebuild is not None:
                assert await rebuild.swap()
                await rebuild.release()
                rebuild = None
        if rebuild is not None:
            await rebuild.release()  # abandoned half way, as an interrupted rebuild is
        if mode == "async":
            while (batch := await projector.step(projector_conn, checkpoint)).events:
                checkpoint = batch.checkpoint

    await assert_read_model_is_the_fold(pool)
