"""The one projection definition is idempotent and monotonic: applying events twice, or older
events after newer ones, in any batches, ends in the same table as applying each once in order.
The one order it relies on is the store's: an order's creation is applied before (or with) its
later events, as every reader of the store applies them."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.create_order import OrderCreator
from orders.domain.commands import OrderRequest
from orders.eventstore import EventStore
from projections.orders import LIVE, Tables, apply_sql
from tests.projections.support import (
    counted,
    counts_of,
    create_orders,
    fold,
    move_orders,
    table,
)

REJECTED_REQUEST = msgspec.convert({"products": [], "shipping_to": "x"}, OrderRequest)
SCRATCH = Tables(*(f"{live}_scratch" for live in LIVE))
# The projection over any chosen events, repeats and order as the test likes.
_APPLY_SOME = """
WITH new_events AS (SELECT * FROM events WHERE position = ANY($1::bigint[])){apply}
SELECT 1
"""
APPLY_SOME = _APPLY_SOME.format(apply=apply_sql(SCRATCH))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def creations(pool: asyncpg.Pool) -> dict[int, int]:
    """A dozen orders moved along every path of their lifecycle, and a rejection, appended
    without projecting them: each event's position -> its stream's first event's."""
    store = EventStore(pool)
    creator = OrderCreator(store)
    await move_orders(store, await create_orders(creator, 12))
    await creator.create(f"rejected-{uuid.uuid4()}", REJECTED_REQUEST)
    for scratch, live in zip(SCRATCH, LIVE, strict=True):
        await pool.execute(f"CREATE TABLE {scratch} (LIKE {live} INCLUDING ALL)")
    rows = await pool.fetch(
        "SELECT e.position, f.position AS first FROM events e"
        " JOIN events f ON f.stream_id = e.stream_id AND f.version = 1"
    )
    return {row["position"]: row["first"] for row in rows}


@st.composite
def replays(draw: st.DrawFn, creations: dict[int, int]) -> list[list[int]]:
    """Every event at least once, some again, in any order but one: an order's creation before
    its first later event (moved there when the shuffle put it after). Cut into batches."""
    positions = sorted(creations)
    again = draw(st.lists(st.sampled_from(positions), max_size=len(positions)))
    shuffled = draw(st.permutations(positions + again))
    order: list[int] = []
    for position in shuffled:
        first = creations[position]
        if position != first and first not in order:
            order.append(first)
        order.append(position)
    size = draw(st.integers(1, 5))
    return [order[i : i + size] for i in range(0, len(order), size)]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
async def test_any_replay_order_with_repeats_ends_in_the_fold_of_the_events(
    pool: asyncpg.Pool, creations: dict[int, int], data: st.DataObject
) -> None:
    batches = data.draw(replays(creations))
    await pool.execute(f"TRUNCATE {', '.join(SCRATCH)}")

    for batch in batches:
        await pool.execute(APPLY_SOME, batch)

    expected = await fold(EventStore(pool))
    assert await table(pool, SCRATCH[0]) == expected
    assert await counted(pool, SCRATCH) == counts_of(expected)
