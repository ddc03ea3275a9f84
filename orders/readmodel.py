"""Queries on the `orders` read model (written only by projections/orders.py)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec

from orders.domain.commands import ProductLine
from orders.eventstore.store import driver_errors
from projections.consistency import ReadYourWrites

GET_ORDER = """
SELECT order_id, request_id, status, products, shipping_to, total, created_at
FROM orders WHERE order_id = $1
"""

# Keyset pagination on the event position: stable, unique, and an index range scan however
# deep the page. One extra row tells whether there is a next page.
LIST_ORDERS = """
SELECT order_id, request_id, status, products, shipping_to, total, created_at, position
FROM orders
WHERE position > $1
ORDER BY position
LIMIT $2
"""

# The sum of at most COUNT_SLOTS rows (see projections/orders.py): constant cost however many
# orders there are.
COUNT_ORDERS = "SELECT coalesce(sum(n), 0)::bigint FROM order_counts"


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

    async def get_order(self, order_id: UUID) -> OrderView | None:
        with driver_errors(None):
            row = await self._pool.fetchrow(GET_ORDER, order_id)
        return None if row is None else _view(row)

    async def list_orders(self, *, after: int, limit: int) -> OrderPage:
        """Up to `limit` orders after the cursor position `after`; `next_after` is None on the
        last page."""
        with driver_errors(None):
            rows = await self._pool.fetch(LIST_ORDERS, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        next_after = str(rows[-1]["position"]) if more else None
        return OrderPage(items=[_view(row) for row in rows], next_after=next_after)

    async def count_orders(self) -> int:
        with driver_errors(None):
            count: int = await self._pool.fetchval(COUNT_ORDERS)
        return count
