"""The append-only event store (the only package that talks to asyncpg about events)."""

from orders.eventstore.coalescing import Batch
from orders.eventstore.errors import (
    AppendBlocked,
    EventStoreError,
    MigrationError,
    StoreUnavailable,
    StreamAlreadyExists,
    WrongExpectedVersion,
)
from orders.eventstore.group_commit import GroupAppend, GroupCommit
from orders.eventstore.store import (
    ANY,
    NO_STREAM,
    START,
    Append,
    BarrierMode,
    EventStore,
    ExpectedVersion,
    NewEvent,
    Position,
    RecordedEvent,
    StreamStart,
)

__all__ = [
    "ANY",
    "NO_STREAM",
    "START",
    "Append",
    "AppendBlocked",
    "BarrierMode",
    "Batch",
    "EventStore",
    "EventStoreError",
    "ExpectedVersion",
    "GroupAppend",
    "GroupCommit",
    "MigrationError",
    "NewEvent",
    "Position",
    "RecordedEvent",
    "StoreUnavailable",
    "StreamAlreadyExists",
    "StreamStart",
    "WrongExpectedVersion",
]
