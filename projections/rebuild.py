"""`orders rebuild`: replay every event into shadow tables, then swap them in, while writes go on.

The steps are separate methods so that tests can interleave them with appends and projector
batches: `start` (take the rebuild lock, create empty shadow tables), `step` (one catch-up
batch into the shadows), `swap` (the final catch-up and the rename, in one short transaction).
Until `swap` commits the live tables are untouched, so an interrupted rebuild leaves nothing
behind but shadow tables, which the next run drops before it starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final, NamedTuple

import asyncpg

import projections.orders
from orders.eventstore import START
from orders.eventstore import sql as store_sql
from orders.eventstore.pool import connect
from projections import sql
from projections.catchup import CatchUp, Connection
from projections.wakeup import Backoff

# Appends queue behind the swap while it holds (or waits for) its locks; this bounds that wait.
# A reader holding the live table longer makes the swap give up, catch up again and retry.
SWAP_LOCK_TIMEOUT_MS: Final = 100
SWAP_ATTEMPTS: Final = 50

# Privileges granted on the live table (to an application role, say), as GRANT statements for
# the shadow table: CREATE TABLE ... LIKE copies the columns and indexes but not the grants.
_GRANTS = """
SELECT format('GRANT %s ON TABLE %I TO %s', a.privilege_type, $2::text,
              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END)
FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
LEFT JOIN pg_roles r ON r.oid = a.grantee
WHERE c.oid = $1::regclass AND a.grantee <> c.relowner
"""

# The live table's comment (its reason, see migration 0006), as a COMMENT statement for the
# shadow table: LIKE ... INCLUDING ALL copies the comments of columns and indexes only.
_TABLE_COMMENT = """
SELECT format('COMMENT ON TABLE %I IS %L', $2::text, obj_description($1::regclass, 'pg_class'))
WHERE obj_description($1::regclass, 'pg_class') IS NOT NULL
"""

# After the swap the indexes still carry the shadow's names (orders_rebuild_pkey); give them
# the live names again, so that every rebuild starts from the same names.
_INDEX_RENAMES = """
SELECT format('ALTER INDEX %I RENAME TO %I', i.relname,
              $2::text || substr(i.relname, length($3::text) + 1))
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = $1::regclass AND starts_with(i.relname, $3::text)
"""


class RebuildRunning(Exception):
    """Another rebuild of the projection holds the rebuild lock."""


class SwapBlocked(Exception):
    """The swap could not take its locks in SWAP_ATTEMPTS attempts."""


class Summary(NamedTuple):
    events: int
    seconds: float
    swap_attempts: int


class Rebuild:
    """The rebuild of the `orders` projection over one connection."""

    def __init__(self, conn: Connection, *, batch_size: int) -> None:
        orders = projections.orders
        self._conn = conn
        self._live = orders.LIVE
        self._shadow = orders.Tables(*(f"{live}_rebuild" for live in orders.LIVE))
        self._name = orders.NAME
        self._lock_name = f"rebuild:{orders.NAME}"
        apply = orders.apply_sql(self._shadow)
        self._catch_up = CatchUp(apply, f"{orders.NAME}_rebuild", batch_size)
        self._tail = sql.tail_sql(apply)
        self._checkpoint = START
        self.events = 0
        """Events applied to the shadow tables so far."""

    @property
    def batch_size(self) -> int:
        return self._catch_up.batch_size

    async def start(self) -> None:
        """Take the rebuild lock (RebuildRunning if taken) and create empty shadow tables."""
        if not await self._conn.fetchval(sql.TRY_LOCK, self._lock_name):
            raise RebuildRunning(f"another rebuild of {self._name} is running")
        async with self._conn.transaction():
            for live, shadow in zip(self._live, self._shadow, strict=True):
                await self._conn.execute(f"DROP TABLE IF EXISTS {shadow}")
                await self._conn.execute(f"CREATE TABLE {shadow} (LIKE {live} INCLUDING ALL)")
                for carried in [
                    *await self._conn.fetch(_GRANTS, live, shadow),
                    *await self._conn.fetch(_TABLE_COMMENT, live, shadow),
                ]:
                    await self._conn.execute(carried[0])
            await self._conn.execute(sql.DELETE_CHECKPOINT, self._catch_up.checkpoint_name)
        self._checkpoint = START
        self.events = 0

    async def step(self) -> int:
        """Apply the next batch of events to the shadow tables; return how many."""
        batch = await self._catch_up.step(self._conn, self._checkpoint)
        self._checkpoint = batch.checkpoint
        self.events += batch.events
        return batch.events

    async def swap(self, lock_timeout_ms: int = SWAP_LOCK_TIMEOUT_MS) -> bool:
        """Apply the last events and put the shadow tables live, in one transaction; False
        (and nothing changed) when a lock was not granted within `lock_timeout_ms`."""
        live_tables = ", ".join(self._live)
        try:
            async with self._conn.transaction():
                await self._conn.execute(
                    "SELECT set_config('lock_timeout', $1, true)", f"{lock_timeout_ms}ms"
                )
                # EXCLUSIVE on events blocks appends (ROW EXCLUSIVE) but not reads of events.
                # Once granted, no inserting transaction is in flight and none can commit
                # before this one does, so the tail below reads every event there will ever be
                # up to the swap, and nothing can slip in between the tail and the rename.
                # Inline appends lock events, then write orders in the same statement; taking
                # the locks in that same order (events first, then the live tables) means an
                # append either finishes before us or waits for us: no deadlock.
                await self._conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
                # ACCESS EXCLUSIVE up front for the DROP: waiting for readers to finish is the
                # only long wait, and lock_timeout bounds it.
                await self._conn.execute(f"LOCK TABLE {live_tables} IN ACCESS EXCLUSIVE MODE")
                tail = await self._conn.fetchval(
                    self._tail, self._checkpoint.tx_id, self._checkpoint.position
                )
                await self._conn.execute(f"DROP TABLE {live_tables}")
                for live, shadow in zip(self._live, self._shadow, strict=True):
                    await self._conn.execute(f"ALTER TABLE {shadow} RENAME TO {live}")
                    for rename in await self._conn.fetch(_INDEX_RENAMES, live, live, shadow):
                        await self._conn.execute(rename[0])
                await self._hand_over_checkpoint()
        except asyncpg.LockNotAvailableError:
            return False
        self.events += tail
        return True

    async def _hand_over_checkpoint(self) -> None:
        """Point the async projectors (this release's checkpoint and the previous release's) at
        the store's gap-safe head: everything up to it is in the new table, and any event a
        still-running transaction appends later lies after it. (Events between the head and
        the tail's end are applied again: idempotently.)"""
        head = await self._conn.fetchrow(store_sql.HEAD)
        if head is not None:
            for name in sorted((self._name, projections.orders.CHECKPOINT)):
                await self._conn.execute(sql.SET_CHECKPOINT, name, head["tx_id"], head["position"])
        await self._conn.execute(sql.DELETE_CHECKPOINT, self._catch_up.checkpoint_name)

    async def release(self) -> None:
        """Let another rebuild start (closing the connection does the same)."""
        await self._conn.execute(sql.UNLOCK, self._lock_name)


Progress = Callable[[int, int], None]
"""Told the events applied so far and the events there were at the start, after each batch."""


async def rebuild(url: str, *, batch_size: int, progress: Progress | None = None) -> Summary:
    """Rebuild the `orders` projection; RebuildRunning if another rebuild runs, SwapBlocked if
    readers kept the live table locked through every swap attempt."""
    conn = await connect(url, application_name="orders-rebuild")
    try:
        job = Rebuild(conn, batch_size=batch_size)
        await job.start()
        total: int = await conn.fetchval("SELECT count(*) FROM events")
        started = time.monotonic()
        backoff = Backoff()
        for attempt in range(1, SWAP_ATTEMPTS + 1):
            while await job.step() == job.batch_size:
                if progress is not None:
                    progress(job.events, total)
            if await job.swap():
                return Summary(job.events, time.monotonic() - started, attempt)
            await asyncio.sleep(backoff.delay())
        raise SwapBlocked(
            f"the swap could not lock the live tables in {SWAP_ATTEMPTS} attempts; "
            "a long-running reader may hold them (the live tables are untouched)"
        )
    finally:
        await conn.close()
