"""Catching a projection up with the store, one batch per statement, and measuring its lag.

The async projector (`projections.worker`) and the rebuild (`projections.rebuild`) both step
through the events this way; they differ only in the tables the projection writes and in the
name of the checkpoint they keep.
"""

from __future__ import annotations

import time
from typing import NamedTuple, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from orders.eventstore import START, Position
from projections import sql

Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy
"""A connection opened on its own or one held from a pool: the statements run on either."""


class Batch(NamedTuple):
    events: int
    """How many events the batch applied (fewer than asked: the projection has caught up)."""

    checkpoint: Position
    """Where the next batch starts."""


class Lag(NamedTuple):
    events: int
    seconds: float
    """The age of the oldest event not yet projected (0 when there is none)."""


class CatchUp:
    """Applies the events after the checkpoint `checkpoint_name` through `apply` (a projection's
    SQL over `new_events`), up to `batch_size` of them per step, and moves that checkpoint and
    any in `also_advances` with it (forward only)."""

    def __init__(
        self,
        apply: str,
        checkpoint_name: str,
        batch_size: int,
        *,
        also_advances: tuple[str, ...] = (),
    ) -> None:
        if batch_size < 1:
            raise ValueError("the batch size must be at least 1")
        self.checkpoint_name = checkpoint_name
        self.batch_size = batch_size
        self._advanced = [checkpoint_name, *also_advances]
        self._statement = sql.catch_up_sql(apply)

    async def checkpoint(self, conn: Connection) -> Position:
        return await stored_checkpoint(conn, self.checkpoint_name)

    async def step(self, conn: Connection, after: Position) -> Batch:
        """Apply the next batch after `after` and advance the checkpoint, atomically."""
        row = await conn.fetchrow(
            self._statement, after.tx_id, after.position, self.batch_size, self._advanced
        )
        assert row is not None  # the statement always answers one row
        reached = [after]
        if row["last_tx_id"] is not None:
            reached.append(Position(row["last_tx_id"], row["last_position"]))
        if row["stored_tx_id"] is not None:
            reached.append(Position(row["stored_tx_id"], row["stored_position"]))
        return Batch(row["events"], max(reached))


async def stored_checkpoint(conn: Connection, name: str) -> Position:
    """The checkpoint `name` as stored (START when there is none yet)."""
    row = await conn.fetchrow(sql.CHECKPOINT, name)
    return START if row is None else Position(row["tx_id"], row["position"])


async def lag(conn: Connection, checkpoint_name: str) -> Lag:
    row = await conn.fetchrow(sql.LAG, checkpoint_name)
    assert row is not None
    return Lag(row["events"], row["seconds"])


class LagMeter:
    """Measures a checkpoint's lag after a worker's step: after every step that caught up, and
    at most once per `every_seconds` while full batches follow each other back to back (the
    count would cost as much as the batch)."""

    def __init__(self, checkpoint_name: str, every_seconds: float = 1.0) -> None:
        self._checkpoint_name = checkpoint_name
        self._every_seconds = every_seconds
        self._measured = 0.0

    async def after_step(self, conn: Connection, *, full: bool) -> Lag | None:
        """The lag now, or None when it is not yet time to measure it again."""
        now = time.monotonic()
        if full and now - self._measured < self._every_seconds:
            return None
        self._measured = now
        return await lag(conn, self._checkpoint_name)
