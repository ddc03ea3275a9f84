"""Queries on the `orders` read model (written only by projections/orders.py), each scoped to
the caller that asks."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec

from orders.domain.callers import ANONYMOUS_OWNER, Caller
from orders.domain.commands import ProductLine
from orders.eventstore.store import driver_errors
from projections.consistency import ReadYourWrites

# Every read is scoped to its caller's orders ($1: the owner), unless the caller is an admin
# (the ..._OF_ANYONE statements). Two statements rather than one with "owner = $1 OR $1 IS
# NULL", so each keeps a plan that uses its index. Another caller's order is simply not found.
GET_ORDER = """
SELECT order_id, request_id, status, products, shipping_to, total, created_at
FROM orders WHERE order_id = $2 AND owner = $1
"""
GET_ORDER_OF_ANYONE = """
SELECT order_id, request_id, status, products, shipping_to, total, created_at
FROM orders WHERE order_id = $1
"""

# Keyset pagination on the event position: stable, unique, and an index range scan however
# deep the page (on (owner, position) for a caller, on position for an admin). One extra row
# tells whether there is a next page.
LIST_ORDERS = """
SELECT order_id, request_id, status, products, shipping_to, total, created_at, position
FROM orders
WHERE owner = $1 AND position > $2
ORDER BY position
LIMIT $3
"""
LIST_ORDERS_OF_ANYONE = """
SELECT order_id, request_id, status, products, shipping_to, total, created_at, position
FROM orders
WHERE position > $1
ORDER BY position
LIMIT $2
"""

# Each a sum of a few counter rows (see projections/orders.py and migration 0005): constant
# cost however many orders, or callers, there are. A named caller's rows are an index range
# scan of owner_order_counts' primary key; the anonymous caller's count is all orders but
# those of named callers; an admin's, all orders.
COUNT_ORDERS = "SELECT coalesce(sum(n), 0)::bigint FROM owner_order_counts WHERE owner = $1"
COUNT_ANONYMOUS_ORDERS = "SELECT coalesce(sum(n - named), 0)::bigint FROM order_counts"
COUNT_ORDERS_OF_ANYONE = "SELECT coalesce(sum(n), 0)::bigint FROM order_counts"


class OrderView(msgspec.Struct, frozen=True):
    """An order as the API shows it, in a create answer and in reads alike."""

    order_id: UUID
    request_id: str
    status: str
    products: list[ProductLine]
    shipping_to: str
    total: int
    created_at: datetime


class OrderPage(msgspec.Struct, frozen=True):
    items: list[OrderView]
    next_after: str | None


_decode_products = msgspec.json.Decoder(list[ProductLine]).decode


def _view(row: asyncpg.Record) -> OrderView:
    return OrderView(
        order_id=row["order_id"],
        request_id=row["request_id"],
        status=row["status"],
        products=_decode_products(row["products"]),
        shipping_to=row["shipping_to"],
        total=row["total"],
        created_at=row["created_at"],
    )


class ReadModel:
    """Reads of the `orders` table over a pool; with `read_your_writes` (async projection),
    `wait_for_writes` lets a read wait for the writes acknowledged before it."""

    def __init__(self, pool: asyncpg.Pool, read_your_writes: ReadYourWrites | None = None) -> None:
        self._pool = pool
        self._read_your_writes = read_your_writes

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
            if caller.admin:
                row = await self._pool.fetchrow(GET_ORDER_OF_ANYONE, order_id)
            else:
                row = await self._pool.fetchrow(GET_ORDER, caller.owner, order_id)
        return None if row is None else _view(row)

    async def list_orders(self, caller: Caller, *, after: int, limit: int) -> OrderPage:
        """Up to `limit` of the orders `caller` may see after the cursor position `after`;
        `next_after` is None on the last page."""
        with driver_errors(None):
            if caller.admin:
                rows = await self._pool.fetch(LIST_ORDERS_OF_ANYONE, after, limit + 1)
            else:
                rows = await self._pool.fetch(LIST_ORDERS, caller.owner, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        next_after = str(rows[-1]["position"]) if more else None
        return OrderPage(items=[_view(row) for row in rows], next_after=next_after)

    async def count_orders(self, caller: Caller) -> int:
        """How many orders `caller` may see."""
        with driver_errors(None):
            if caller.admin:
                count: int = await self._pool.fetchval(COUNT_ORDERS_OF_ANYONE)
            elif caller.owner == ANONYMOUS_OWNER:
                count = await self._pool.fetchval(COUNT_ANONYMOUS_ORDERS)
            else:
                count = await self._pool.fetchval(COUNT_ORDERS, caller.owner)
        return count
