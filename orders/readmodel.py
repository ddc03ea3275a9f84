"""Queries on the `orders` read model (written only by projections/orders.py), each scoped to
the caller that asks."""

from __future__ import annotations

from datetime import datetime
from typing import Final, NamedTuple
from uuid import UUID

import asyncpg
import msgspec

from orders.domain.callers import ANONYMOUS_OWNER, Caller
from orders.domain.commands import ProductLine
from orders.domain.events import OrderCreated
from orders.domain.lifecycle import OrderState
from orders.eventstore.coalescing import MAX_BATCH, MAX_IN_FLIGHT, Coalescer
from orders.eventstore.store import RecordedEvent, driver_errors, recorded_event
from projections.consistency import ReadYourWrites

# Every read is scoped to its caller's orders ($1: the owner), unless the caller is an admin
# (the ..._OF_ANYONE statements). Two statements rather than one with "owner = $1 OR $1 IS
# NULL", so each keeps a plan that uses its index. Another caller's order is simply not found.
GET_ORDER = """
SELECT order_id, request_id, status, products, shipping_to, total, created_at, version,
       coalesce(updated_at, created_at) AS updated_at
FROM orders WHERE order_id = $2 AND owner = $1
"""
GET_ORDER_OF_ANYONE = """
SELECT order_id, request_id, status, products, shipping_to, total, created_at, version,
       coalesce(updated_at, created_at) AS updated_at
FROM orders WHERE order_id = $1
"""

# Keyset pagination on the event position: stable, unique, and an index range scan however
# deep the page (on (owner, position) for a caller, on position for those who read every
# order, on (status, position) for them with a status). A caller's own orders in one status
# are its (owner, position) range, filtered: one caller's orders are few. One extra row tells
# whether there is a next page.
LIST_ORDERS = """
SELECT order_id, request_id, status, products, shipping_to, total, created_at, version,
       coalesce(updated_at, created_at) AS updated_at, position
FROM orders
WHERE owner = $1 AND position > $2
ORDER BY position
LIMIT $3
"""
LIST_ORDERS_OF_ANYONE = """
SELECT order_id, request_id, status, products, shipping_to, total, created_at, version,
       coalesce(updated_at, created_at) AS updated_at, position
FROM orders
WHERE position > $1
ORDER BY position
LIMIT $2
"""
LIST_ORDERS_IN_STATUS = """
SELECT order_id, request_id, status, products, shipping_to, total, created_at, version,
       coalesce(updated_at, created_at) AS updated_at, position
FROM orders
WHERE owner = $1 AND position > $2 AND status = $4
ORDER BY position
LIMIT $3
"""
LIST_ORDERS_OF_ANYONE_IN_STATUS = """
SELECT order_id, request_id, status, products, shipping_to, total, created_at, version,
       coalesce(updated_at, created_at) AS updated_at, position
FROM orders
WHERE status = $3 AND position > $1
ORDER BY position
LIMIT $2
"""

# An order's row with its owner, joined to its whole stream: who owns the order, and the
# history a command decides on. The stream is named by the caller and its key; the CASE is
# orders.domain.streams.order_stream_id, and tests/integration/test_order_streams.py holds the
# two to each other. One round trip: the row by its primary key, then its stream's events by
# (stream_id, version).
_ORDERS_WITH_THEIR_EVENTS = """
SELECT o.order_id, o.owner, e.position, e.stream_id, e.version, e.event_type, e.data,
       e.metadata, e.tx_id, e.recorded_at
FROM orders o
JOIN events e ON e.stream_id = CASE WHEN o.owner = '' THEN o.request_id
                                    ELSE '§' || length(o.owner) || ':' || o.owner
                                         || o.request_id END
"""

# The order `$1`, for a lone command.
ORDER_EVENTS_OF_ONE = (
    _ORDERS_WITH_THEIR_EVENTS
    + """WHERE o.order_id = $1
ORDER BY e.version
"""
)

# The orders `$1`, for a batch of concurrent commands (`ReadModel.locate` coalesces them). The
# array goes in through a scalar subquery so that the planner costs every call alike: a bare
# `= ANY($1)` makes each custom plan (sized to its array) look cheaper than the generic one, so
# PostgreSQL plans the join afresh on every call, which costs more than the join itself
# (tests/integration/test_statement_plans.py).
ORDER_EVENTS = (
    _ORDERS_WITH_THEIR_EVENTS
    + """WHERE o.order_id = ANY((SELECT $1::uuid[])::uuid[])
ORDER BY o.order_id, e.version
"""
)

# Each a sum of a few counter rows (see projections/orders.py and migration 0005): constant
# cost however many orders, or callers, there are. A named caller's rows are an index range
# scan of owner_order_counts' primary key; the anonymous caller's count is all orders but
# those of named callers; an admin's, all orders.
COUNT_ORDERS = "SELECT coalesce(sum(n), 0)::bigint FROM owner_order_counts WHERE owner = $1"
COUNT_ANONYMOUS_ORDERS = "SELECT coalesce(sum(n - named), 0)::bigint FROM order_counts"
COUNT_ORDERS_OF_ANYONE = "SELECT coalesce(sum(n), 0)::bigint FROM order_counts"


class CreatedOrder(msgspec.Struct, frozen=True):
    """The answer to a create: the order as it was created, in the shape every release has
    answered with, so that a replay is the same bytes whichever release gives it and however
    the order has moved on since (a read shows it now: `OrderView`)."""

    order_id: UUID
    request_id: str
    status: str
    products: list[ProductLine]
    shipping_to: str
    total: int
    created_at: datetime

    @classmethod
    def of(cls, event: OrderCreated) -> CreatedOrder:
        return cls(
            order_id=event.order_id,
            request_id=event.request_id,
            status="created",
            products=event.products,
            shipping_to=event.shipping_to,
            total=event.total,
            created_at=event.created_at,
        )


class OrderView(CreatedOrder, frozen=True):
    """An order as the API shows it now: in reads and in the answer to a lifecycle command
    (a create answers with the order as it was created, `CreatedOrder`)."""

    version: int
    """The version of the order's stream this shows; its strong ETag."""
    updated_at: datetime
    """When the order last changed (its creation, until anything else happened)."""

    @classmethod
    def of_state(cls, state: OrderState) -> OrderView:
        """The order as `state` (a fold of its stream) makes it: the same bytes as a read of
        the read model at that version."""
        created = state.created
        return cls(
            order_id=created.order_id,
            request_id=created.request_id,
            status=state.status,
            products=created.products,
            shipping_to=created.shipping_to,
            total=created.total,
            created_at=created.created_at,
            version=state.version,
            updated_at=state.updated_at,
        )


class LocatedOrder(NamedTuple):
    """An order's owner and its stream, as a command finds them."""

    owner: str
    events: list[RecordedEvent]


class OrderPage(msgspec.Struct, frozen=True):
    items: list[OrderView]
    next_after: str | None


_decode_products = msgspec.json.Decoder(list[ProductLine]).decode


def _located(rows: list[asyncpg.Record]) -> dict[UUID, LocatedOrder]:
    """The orders of ORDER_EVENTS' rows by id, each with its owner and its events in order."""
    found: dict[UUID, LocatedOrder] = {}
    for row in rows:
        located = found.setdefault(row["order_id"], LocatedOrder(row["owner"], []))
        located.events.append(recorded_event(row))
    return found


def _view(row: asyncpg.Record) -> OrderView:
    return OrderView(
        order_id=row["order_id"],
        request_id=row["request_id"],
        status=row["status"],
        products=_decode_products(row["products"]),
        shipping_to=row["shipping_to"],
        total=row["total"],
        created_at=row["created_at"],
        version=row["version"],
        updated_at=row["updated_at"],
    )


_LISTS: Final = {
    (False, False): LIST_ORDERS,
    (True, False): LIST_ORDERS_OF_ANYONE,
    (False, True): LIST_ORDERS_IN_STATUS,
    (True, True): LIST_ORDERS_OF_ANYONE_IN_STATUS,
}
"""The list statement by (whether the caller reads every order, whether a status is asked)."""


class ReadModel:
    """Reads of the `orders` table over a pool; with `read_your_writes` (async projection),
    `wait_for_writes` lets a read wait for the writes acknowledged before it."""

    def __init__(self, pool: asyncpg.Pool, read_your_writes: ReadYourWrites | None = None) -> None:
        self._pool = pool
        self._read_your_writes = read_your_writes
        # Concurrent commands look their orders up in shared statements: fewer round trips,
        # and fewer backends busy at once (see the README's group commit for commands).
        self._lookups: Coalescer[UUID, LocatedOrder | None] = Coalescer(
            self._order_stream,
            self._order_streams,
            str,
            max_in_flight=MAX_IN_FLIGHT,
            max_batch=MAX_BATCH,
            on_batch=None,
        )

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def wait_for_writes(self) -> None:
        """Return once every write acknowledged before the call is in the read model: at once
        when the projection is inline; raises ProjectionBehind past the configured wait."""
        if self._read_your_writes is not None:
            await self._read_your_writes.wait()

    async def get_order(self, caller: Caller, order_id: UUID) -> OrderView | None:
        """The order, if `caller` may see it (its own, or any for an admin)."""
        with driver_errors(None):
            if caller.reads_every_order:
                row = await self._pool.fetchrow(GET_ORDER_OF_ANYONE, order_id)
            else:
                row = await self._pool.fetchrow(GET_ORDER, caller.owner, order_id)
        return None if row is None else _view(row)

    async def list_orders(
        self, caller: Caller, *, after: int, limit: int, status: str | None = None
    ) -> OrderPage:
        """Up to `limit` of the orders `caller` may see after the cursor position `after`, in
        `status` if given; `next_after` is None on the last page."""
        scope = () if caller.reads_every_order else (caller.owner,)
        filtered = () if status is None else (status,)
        statement = _LISTS[(caller.reads_every_order, status is not None)]
        with driver_errors(None):
            rows = await self._pool.fetch(statement, *scope, after, limit + 1, *filtered)
        more = len(rows) > limit
        rows = rows[:limit]
        next_after = str(rows[-1]["position"]) if more else None
        return OrderPage(items=[_view(row) for row in rows], next_after=next_after)

    async def locate(self, caller: Caller, order_id: UUID) -> LocatedOrder | None:
        """The owner and the stream of the order `order_id`; None when there is no such order
        or `caller` may not see it (its own, or any for those who read every order). The
        stream is the store's, current whatever the projection's lag: call `wait_for_writes`
        first for an order created just before."""
        located = await self._lookups.submit(order_id)
        if located is None or not (caller.reads_every_order or caller.owner == located.owner):
            return None
        return located

    async def _order_stream(self, order_id: UUID) -> LocatedOrder | None:
        with driver_errors(None):
            rows = await self._pool.fetch(ORDER_EVENTS_OF_ONE, order_id)
        return _located(rows).get(order_id)

    async def _order_streams(self, order_ids: list[UUID]) -> list[LocatedOrder | None]:
        """The owner and stream of each of `order_ids`, in order (None: no such order)."""
        with driver_errors(None):
            rows = await self._pool.fetch(ORDER_EVENTS, order_ids)
        found = _located(rows)
        return [found.get(order_id) for order_id in order_ids]

    async def count_orders(self, caller: Caller) -> int:
        """How many orders `caller` may see."""
        with driver_errors(None):
            if caller.reads_every_order:
                count: int = await self._pool.fetchval(COUNT_ORDERS_OF_ANYONE)
            elif caller.owner == ANONYMOUS_OWNER:
                count = await self._pool.fetchval(COUNT_ANONYMOUS_ORDERS)
            else:
                count = await self._pool.fetchval(COUNT_ORDERS, caller.owner)
        return count
