"""Concurrent commands look their orders up in shared statements (`ReadModel.locate`): each
still finds exactly its own order's owner and stream, or nothing, as a lookup of its own
would."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import msgspec

import projections.orders
from orders.create_order import OrderCreator
from orders.domain.callers import Caller
from orders.domain.commands import OrderRequest
from orders.domain.events import OrderCreated
from orders.domain.streams import order_stream_id
from orders.eventstore import EventStore
from orders.readmodel import LocatedOrder, ReadModel

REQUEST = msgspec.json.decode(
    b'{"products": [{"id": 1, "name": "book", "price": 1500, "quantity": 2}],'
    b' "shipping_to": "1 Main St"}',
    type=OrderRequest,
)


async def created(creator: OrderCreator, owner: str) -> tuple[uuid.UUID, str]:
    """A new order of `owner`: its id and its stream."""
    key = f"lookup-{uuid.uuid4()}"
    outcome = await creator.create(key, REQUEST, owner)
    assert isinstance(outcome.event, OrderCreated)
    return outcome.event.order_id, order_stream_id(owner, key)


async def test_concurrent_lookups_each_find_their_own_order_or_nothing(
    pool: asyncpg.Pool,
) -> None:
    creator = OrderCreator(EventStore(pool), inline_projection=projections.orders.INLINE)
    alices = [await created(creator, "alice") for _ in range(6)]
    anonymous = [await created(creator, "") for _ in range(3)]
    alice, bob, admin = Caller("alice"), Caller("bob"), Caller("operator", admin=True)
    read_model = ReadModel(pool)
    asked: list[tuple[Caller, uuid.UUID, str | None]] = [
        *((alice, order_id, stream) for order_id, stream in alices),
        *((bob, order_id, None) for order_id, _ in alices[:2]),  # another caller's: not found
        *((admin, order_id, stream) for order_id, stream in anonymous),
        (alice, uuid.uuid4(), None),  # no such order
        (alice, alices[0][0], alices[0][1]),  # the same order twice in one batch
    ]

    found = await asyncio.gather(*(read_model.locate(c, order_id) for c, order_id, _ in asked))

    for (caller, _, stream), located in zip(asked, found, strict=True):
        if stream is None:
            assert located is None
            continue
        assert isinstance(located, LocatedOrder)
        assert located.owner == ("alice" if caller != admin else "")
        assert [(e.stream_id, e.version, e.type) for e in located.events] == [
            (stream, 1, "OrderCreated")
        ]
