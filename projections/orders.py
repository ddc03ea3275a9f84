"""The `orders` projection: an order's events -> its row of `orders`, and the order counts.

One definition serves every mode. It is SQL that continues a WITH list in which `new_events`
holds events (the columns of `events`): the append statement supplies the rows it has just
inserted (inline mode), the catch-up worker and the rebuild supply a batch read from the store.

Idempotent and monotonic: an order row is inserted once, keyed by its order id, and then only
moves to a higher version of its stream, so applying an event twice, or an older event after a
newer one, changes nothing; the counts are raised only by rows that were really inserted.
Events are applied in store order, in which an order's creation comes before its later events
(a command reads the committed creation before it appends), so a lifecycle event always finds
its order's row, or its creation in the same batch.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from orders.domain.lifecycle import STATUS_AFTER

NAME: Final = "orders"
"""The projection's name: its metrics, the checkpoint reads wait on, the rebuild's lock."""

CHECKPOINT: Final = "orders_lifecycle"
"""Where this release's projector reads from. The previous release's projector moved (and,
while it runs, still moves) NAME's checkpoint past lifecycle events it does not know, so NAME's
cannot tell this projector what it has applied (see migration 0007). This projector moves
NAME's too, so NAME's still says "every event up to here is in the read model" to every reader
that waits on it (reads of both releases): exactly so once the previous projector is gone;
while it still runs, for creations (a status change it skipped shows once this projector has
applied it)."""


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

# The status each lifecycle event type leaves an order in, as SQL, from the domain's own table.
_LIFECYCLE_TYPES = [name for name in STATUS_AFTER if name != "OrderCreated"]
_STATUS_OF_TYPE = (
    "CASE c.event_type "
    + " ".join(f"WHEN '{name}' THEN '{STATUS_AFTER[name]}'" for name in _LIFECYCLE_TYPES)
    + " END"
)

# Order rows. `changes` is the latest lifecycle event of each order among these events. An order
# created in this batch is inserted as it stands after them; an order created earlier is
# updated. Both only ever move a row to a higher version, so older events applied again change
# nothing. The insert is an upsert, not DO NOTHING, for one race: another projector (the
# previous release's, during a rollout) may insert the same order concurrently; a statement
# waits for that row and, under READ COMMITTED, ON CONFLICT DO UPDATE sees it even though the
# statement's snapshot does not, so this batch's later events still reach it. `xmax = 0` tells
# the rows really inserted (counted) from those updated. The update leaves out orders created
# in this batch: the upsert has them, and one statement must not modify a row twice.
#
# Lock order: a statement that appends many events (group commit) counts several owners at
# once; it locks their count rows in owner order (ORDER BY owner), so two such statements
# sharing owners and a slot never wait on each other in a cycle. Each statement's events are
# all written before any count row is locked, as the counts aggregate over all of them.
#
# Events recorded before orders had owners carry none: they are the anonymous caller's ('').
# order_counts counts every order (`named`: those of named callers); owner_order_counts counts
# each named caller's. See migration 0005.
_APPLY = """,
changes AS (
    SELECT DISTINCT ON ((e.data ->> 'order_id')::uuid)
           (e.data ->> 'order_id')::uuid AS order_id, e.version, e.event_type,
           (e.data ->> 'occurred_at')::timestamptz AS occurred_at
    FROM new_events e
    WHERE e.event_type IN ({lifecycle_types})
    ORDER BY (e.data ->> 'order_id')::uuid, e.version DESC
), projected_orders AS (
    INSERT INTO {t.orders} AS o (order_id, request_id, owner, status, products, shipping_to,
                                 total, created_at, position, version, updated_at)
    SELECT (e.data ->> 'order_id')::uuid, e.data ->> 'request_id',
           coalesce(e.data ->> 'owner', ''), coalesce({status_of_type}, 'created'),
           e.data -> 'products', e.data ->> 'shipping_to', (e.data ->> 'total')::bigint,
           (e.data ->> 'created_at')::timestamptz, e.position, coalesce(c.version, 1),
           c.occurred_at
    FROM new_events e
    LEFT JOIN changes c ON c.order_id = (e.data ->> 'order_id')::uuid
    WHERE e.event_type = 'OrderCreated'
    ON CONFLICT (order_id) DO UPDATE
        SET status = excluded.status, version = excluded.version,
            updated_at = excluded.updated_at
        WHERE o.version < excluded.version
    RETURNING o.owner, o.xmax = 0 AS inserted
), changed_orders AS (
    UPDATE {t.orders} AS o
    SET status = {status_of_type}, version = c.version, updated_at = c.occurred_at
    FROM changes c
    WHERE o.order_id = c.order_id AND o.version < c.version
      AND NOT EXISTS (
          SELECT FROM new_events e
          WHERE e.event_type = 'OrderCreated' AND (e.data ->> 'order_id')::uuid = c.order_id
      )
), counted_orders AS (
    INSERT INTO {t.counts} AS c (slot, n, named)
    SELECT pg_backend_pid() % {slots}, count(*), count(*) FILTER (WHERE owner <> '')
    FROM projected_orders WHERE inserted HAVING count(*) > 0
    ON CONFLICT (slot) DO UPDATE SET n = c.n + excluded.n, named = c.named + excluded.named
), counted_owner_orders AS (
    INSERT INTO {t.owner_counts} AS c (owner, slot, n)
    SELECT owner, pg_backend_pid() % {owner_slots}, count(*)
    FROM projected_orders WHERE inserted AND owner <> '' GROUP BY owner ORDER BY owner
    ON CONFLICT (owner, slot) DO UPDATE SET n = c.n + excluded.n
)"""


def apply_sql(tables: Tables = LIVE) -> str:
    """The projection over `new_events`, writing to `tables` (the rebuild writes to shadow
    tables). Table names are our own constants, never input."""
    return _APPLY.format(
        t=tables,
        slots=COUNT_SLOTS,
        owner_slots=OWNER_COUNT_SLOTS,
        lifecycle_types=", ".join(f"'{name}'" for name in _LIFECYCLE_TYPES),
        status_of_type=_STATUS_OF_TYPE,
    )


INLINE: Final = apply_sql()
"""What the append statement runs in inline mode."""
