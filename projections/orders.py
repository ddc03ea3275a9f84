"""The `orders` projection: OrderCreated events -> rows of `orders` and the order counts.

One definition serves every mode. It is SQL that continues a WITH list in which `new_events`
holds events (the columns of `events`): the append statement supplies the rows it has just
inserted (inline mode), the catch-up worker and the rebuild supply a batch read from the store.

Idempotent and monotonic: an order row is only ever inserted, keyed by its order id, so
applying an event twice, or an older event after a newer one, changes nothing; the counts are
raised only by rows that were really inserted.
"""

from __future__ import annotations

from typing import Final, NamedTuple

NAME: Final = "orders"


class Tables(NamedTuple):
    """Where the projection writes: the live tables, or the rebuild's shadows of them."""

    orders: str
    counts: str
    owner_counts: str


LIVE: Final = Tables("orders", "order_counts", "owner_order_counts")

# Concurrent creates add to different count rows (chosen by backend, so one connection keeps
# to one row) instead of all waiting on one; reading a count sums these few rows. A caller's
# own count needs fewer slots: only that caller's concurrent creates share them.
COUNT_SLOTS: Final = 64
OWNER_COUNT_SLOTS: Final = 8

# Lock order: a statement that appends many events (group commit) counts several owners at
# once; it locks their count rows in owner order (ORDER BY owner), so two such statements
# sharing owners and a slot never wait on each other in a cycle. Each statement's events are
# all written before any count row is locked, as the counts aggregate over all of them.
#
# Events recorded before orders had owners carry none: they are the anonymous caller's ('').
# order_counts counts every order (`named`: those of named callers); owner_order_counts counts
# each named caller's. See migration 0005.
_APPLY = """,
projected_orders AS (
    INSERT INTO {t.orders} (order_id, request_id, owner, status, products, shipping_to, total,
                            created_at, position)
    SELECT (e.data ->> 'order_id')::uuid, e.data ->> 'request_id',
           coalesce(e.data ->> 'owner', ''), 'created', e.data -> 'products',
           e.data ->> 'shipping_to', (e.data ->> 'total')::bigint,
           (e.data ->> 'created_at')::timestamptz, e.position
    FROM new_events e
    WHERE e.event_type = 'OrderCreated'
    ON CONFLICT DO NOTHING
    RETURNING owner
), counted_orders AS (
    INSERT INTO {t.counts} AS c (slot, n, named)
    SELECT pg_backend_pid() % {slots}, count(*), count(*) FILTER (WHERE owner <> '')
    FROM projected_orders HAVING count(*) > 0
    ON CONFLICT (slot) DO UPDATE SET n = c.n + excluded.n, named = c.named + excluded.named
), counted_owner_orders AS (
    INSERT INTO {t.owner_counts} AS c (owner, slot, n)
    SELECT owner, pg_backend_pid() % {owner_slots}, count(*)
    FROM projected_orders WHERE owner <> '' GROUP BY owner ORDER BY owner
    ON CONFLICT (owner, slot) DO UPDATE SET n = c.n + excluded.n
)"""


def apply_sql(tables: Tables = LIVE) -> str:
    """The projection over `new_events`, writing to `tables` (the rebuild writes to shadow
    tables). Table names are our own constants, never input."""
    return _APPLY.format(t=tables, slots=COUNT_SLOTS, owner_slots=OWNER_COUNT_SLOTS)


INLINE: Final = apply_sql()
"""What the append statement runs in inline mode."""
