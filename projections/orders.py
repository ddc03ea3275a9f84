"""The `orders` projection: OrderCreated events -> rows of `orders` and the order count.

One definition serves every mode. It is SQL that continues a WITH list in which `new_events`
holds events (the columns of `events`): the append statement supplies the rows it has just
inserted (inline mode), the catch-up worker and the rebuild supply a batch read from the store.

Idempotent and monotonic: an order row is only ever inserted, keyed by its order id, so
applying an event twice, or an older event after a newer one, changes nothing; the count is
raised only by rows that were really inserted.
"""

from __future__ import annotations

from typing import Final

NAME: Final = "orders"
ORDERS_TABLE: Final = "orders"
COUNTS_TABLE: Final = "order_counts"

# Concurrent creates add to different count rows (chosen by backend, so one connection keeps
# to one row) instead of all waiting on one; reading the count sums these few rows.
COUNT_SLOTS: Final = 64

_APPLY = """,
projected_orders AS (
    INSERT INTO {orders} (order_id, request_id, status, products, shipping_to, total,
                          created_at, position)
    SELECT (e.data ->> 'order_id')::uuid, e.data ->> 'request_id', 'created', e.data -> 'products',
           e.data ->> 'shipping_to', (e.data ->> 'total')::bigint,
           (e.data ->> 'created_at')::timestamptz, e.position
    FROM new_events e
    WHERE e.event_type = 'OrderCreated'
    ON CONFLICT DO NOTHING
    RETURNING 1
), counted_orders AS (
    INSERT INTO {counts} AS c (slot, n)
    SELECT pg_backend_pid() % {slots}, count(*) FROM projected_orders HAVING count(*) > 0
    ON CONFLICT (slot) DO UPDATE SET n = c.n + excluded.n
)"""


def apply_sql(orders_table: str = ORDERS_TABLE, counts_table: str = COUNTS_TABLE) -> str:
    """The projection over `new_events`, writing to the given tables (the rebuild writes to
    shadow tables). Table names are our own constants, never input."""
    return _APPLY.format(orders=orders_table, counts=counts_table, slots=COUNT_SLOTS)


INLINE: Final = apply_sql()
"""What the append statement runs in inline mode."""
