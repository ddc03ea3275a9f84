"""The statements a command's lookup runs on every call are planned once per connection, not
on every call: PostgreSQL moves a prepared statement to its generic plan after five custom
ones only when the generic plan costs no more, and a bare `= ANY($1)` never does (each custom
plan, sized to its array, looks cheaper), so the join would be planned again on each call."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest_asyncio

import projections.orders
from orders.create_order import OrderCreator
from orders.domain.callers import Caller
from orders.domain.commands import OrderRequest
from orders.domain.events import OrderCreated
from orders.eventstore import EventStore
from orders.eventstore.pool import create_pool
from orders.readmodel import ORDER_EVENTS, ORDER_EVENTS_OF_ONE, ReadModel

REQUEST = msgspec.json.decode(
    b'{"products": [{"id": 1, "name": "pen", "price": 250, "quantity": 4}],'
    b' "shipping_to": "2 High St"}',
    type=OrderRequest,
)
CALLS = 12


@pytest_asyncio.fixture(loop_scope="session")
async def one_connection(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of one connection: every statement is prepared, and planned, on it."""
    pool = await create_pool(database_url, size=1)
    yield pool
    await pool.close()


async def plans(pool: asyncpg.Pool, statement: str) -> tuple[int, int]:
    """How many generic and custom plans the connection has made for `statement`."""
    row = await pool.fetchrow(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
        statement,
    )
    assert row is not None, "the statement was never prepared on this connection"
    return row["generic_plans"], row["custom_plans"]


async def test_lone_and_batched_lookups_settle_on_a_generic_plan(
    one_connection: asyncpg.Pool,
) -> None:
    creator = OrderCreator(EventStore(one_connection), inline_projection=projections.orders.INLINE)
    order_ids = []
    for _ in range(4):
        outcome = await creator.create(f"plans-{uuid.uuid4()}", REQUEST, "alice")
        assert isinstance(outcome.event, OrderCreated)
        order_ids.append(outcome.event.order_id)
    read_model = ReadModel(one_connection)
    alice = Caller("alice")

    for _ in range(CALLS):
        # The first goes out alone; the rest queue behind it and go out as one batch.
        found = await asyncio.gather(*(read_model.locate(alice, o) for o in order_ids))
        assert all(located is not None for located in found)

    for statement in (ORDER_EVENTS_OF_ONE, ORDER_EVENTS):
        generic, custom = await plans(one_connection, statement)
        assert generic + custom == CALLS
        assert custom <= 5 and generic >= CALLS - 5, (statement, generic, custom)
