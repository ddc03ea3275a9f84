"""The store's own errors: nothing above the store sees a driver exception."""


class EventStoreError(Exception):
    """Base of every error the event store raises."""


class StreamAlreadyExists(EventStoreError):
    """An append expected "no stream", but the stream has events."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(f"stream {stream_id!r} already exists")
        self.stream_id = stream_id


class WrongExpectedVersion(EventStoreError):
    """An append expected the stream at one version, and it is at `actual` (0: no stream),
    as read after the conflict, in a statement of its own."""

    def __init__(self, stream_id: str, expected: int | str, actual: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, not the expected {expected!r}"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class AppendBlocked(EventStoreError):
    """Another transaction holds the stream (an append still in flight) past `lock_timeout`."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(f"stream {stream_id!r} is being written by another request")
        self.stream_id = stream_id


class StoreUnavailable(EventStoreError):
    """The database cannot be reached or did not answer in time."""


class MigrationError(EventStoreError):
    """The database schema and this code disagree."""
