"""The statements the projection runners share: the catch-up batch, checkpoints, lag, freshness.

Every statement that applies events continues a projection's SQL (see `projections.orders`)
after a CTE `new_events`; only where those events come from differs.
"""

from __future__ import annotations

from orders.eventstore import sql as store_sql

PROJECTED_CHANNEL = "orders_projected"
"""Signalled after a catch-up batch commits, so that waiting reads re-check at once."""

# Moves a checkpoint forward only: a runner holding an older position (a projector that has
# not yet noticed a rebuild's swap, or a leader about to lose its lock) never moves it back.
_ADVANCE = """
ON CONFLICT (projection) DO UPDATE
    SET tx_id = excluded.tx_id, position = excluded.position, updated_at = excluded.updated_at
    WHERE (c.tx_id, c.position) < (excluded.tx_id, excluded.position)"""

# One statement, so one transaction: the batch is read with the store's own gap-safe READ_ALL
# ($1, $2: the checkpoint, $3: the batch size), projected, and the checkpoints ($4: their names,
# the runner's own first) move to the batch's last event. A crash anywhere leaves either all of
# it or none of it. They are upserted in name order, so two runners sharing checkpoints never
# wait on each other's rows in a cycle. The answer also carries the runner's checkpoint as
# stored before (the statement cannot see its own upsert), so a runner behind a checkpoint
# moved by someone else catches up with it.
_CATCH_UP = """
WITH new_events AS ({read_all}){apply},
last_event AS (
    SELECT tx_id, position FROM new_events ORDER BY tx_id DESC, position DESC LIMIT 1
), advanced AS (
    INSERT INTO projection_checkpoints AS c (projection, tx_id, position, updated_at)
    SELECT names.name, tx_id, position, now()
    FROM last_event, unnest($4::text[]) AS names (name)
    ORDER BY names.name{advance}
)
SELECT (SELECT count(*) FROM new_events) AS events,
       l.tx_id AS last_tx_id, l.position AS last_position,
       s.tx_id AS stored_tx_id, s.position AS stored_position
FROM (VALUES (1)) AS one (x)
LEFT JOIN last_event l ON true
LEFT JOIN projection_checkpoints s ON s.projection = ($4::text[])[1]
"""

# Every event after the checkpoint, without READ_ALL's xmin bound and without a limit. Only
# for the rebuild's swap, which holds events in EXCLUSIVE mode: no inserting transaction is in
# flight then, so every event is final, while other transactions anywhere on the server (which
# the xmin bound waits for) could hold back events that inline writers have already projected.
_TAIL = """
WITH new_events AS (SELECT * FROM events WHERE (tx_id, position) > ($1::xid8, $2::bigint)){apply}
SELECT count(*) AS events FROM new_events
"""


def catch_up_sql(apply: str) -> str:
    """The catch-up batch for a projection whose SQL over `new_events` is `apply`."""
    return _CATCH_UP.format(read_all=store_sql.READ_ALL, apply=apply, advance=_ADVANCE)


def tail_sql(apply: str) -> str:
    """The rebuild's final catch-up under the swap lock (see `_TAIL`)."""
    return _TAIL.format(apply=apply)


CHECKPOINT = "SELECT tx_id, position FROM projection_checkpoints WHERE projection = $1"

_SET_CHECKPOINT = """
INSERT INTO projection_checkpoints AS c (projection, tx_id, position, updated_at)
VALUES ($1, $2, $3, now()){advance}
"""
SET_CHECKPOINT = _SET_CHECKPOINT.format(advance=_ADVANCE)

DELETE_CHECKPOINT = "DELETE FROM projection_checkpoints WHERE projection = $1"

# A projection without a checkpoint row has projected nothing: it stands at (0, 0).
_AFTER_CHECKPOINT = (
    "(e.tx_id, e.position) > (coalesce(c.tx_id, '0'::xid8), coalesce(c.position, 0))"
)

# How far a projection is behind: events after its checkpoint and the age of the oldest. The
# count is an index range scan over the lag only.
_LAG = """
SELECT lag.events, coalesce(extract(epoch FROM now() - lag.oldest), 0)::float8 AS seconds
FROM (VALUES (1)) AS one (x)
LEFT JOIN projection_checkpoints c ON c.projection = $1
CROSS JOIN LATERAL (
    SELECT count(*) AS events, min(e.recorded_at) AS oldest FROM events e
    WHERE {after_checkpoint}
) AS lag
"""
LAG = _LAG.format(after_checkpoint=_AFTER_CHECKPOINT)

# Read-your-writes: has the projection covered every event visible when the read began? $2 is
# the newest position the read could see at its start: NULL on the first check, which takes it
# now and returns it for the later ones. An event at or below it that lies after the
# checkpoint (in (tx_id, position) order) may be a write acknowledged before the read; none
# means the read model holds every such write. An index range scan over the lag only.
_CAUGHT_UP = """
WITH head AS (
    SELECT coalesce($2::bigint, (SELECT max(position) FROM events), 0) AS position
)
SELECT head.position AS head,
       NOT EXISTS (
           SELECT 1 FROM events e WHERE {after_checkpoint} AND e.position <= head.position
       ) AS caught_up
FROM head LEFT JOIN projection_checkpoints c ON c.projection = $1
"""
CAUGHT_UP = _CAUGHT_UP.format(after_checkpoint=_AFTER_CHECKPOINT)

# Session advisory locks keyed by name: one leader per projection, one rebuild at a time.
TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))"
UNLOCK = "SELECT pg_advisory_unlock(hashtextextended($1, 0))"
