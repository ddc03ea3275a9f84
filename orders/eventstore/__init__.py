"""The append-only event store (the only package that talks to asyncpg about events)."""

from orders.eventstore.errors import (
    AppendBlocked,
    EventStoreError,
    MigrationError,
    StoreUnavailable,
    StreamAlreadyExists,
    WrongExpectedVersion,
)
from orders.eventstore.store import (
    ANY,
    NO_STREAM,
    START,
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
    "EventStore",
    "EventStoreError",
    "ExpectedVersion",
    "MigrationError",
    "NewEvent",
    "Position",
    "RecordedEvent",
    "StoreUnavailable",
    "StreamAlreadyExists",
    "StreamStart",
    "WrongExpectedVersion",
]
