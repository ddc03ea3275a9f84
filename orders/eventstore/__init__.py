"""The append-only event store (the only package that talks to asyncpg about events)."""

from orders.eventstore.errors import (
    AppendBlocked,
    EventStoreError,
    MigrationError,
    StoreUnavailable,
    StreamAlreadyExists,
    WrongExpectedVersion,
)
from orders.eventstore.group_commit import Batch, GroupCommit
from orders.eventstore.store import (
    ANY,
    NO_STREAM,
    START,
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
    "AppendBlocked",
    "BarrierMode",
    "Batch",
    "EventStore",
    "EventStoreError",
    "ExpectedVersion",
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
