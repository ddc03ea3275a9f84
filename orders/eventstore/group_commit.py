"""Group commit: the stream starts, and the compare-and-set appends, of one process share
statements and commits under load."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter, itemgetter

from orders.eventstore.coalescing import MAX_BATCH, MAX_IN_FLIGHT, Batch, Coalescer
from orders.eventstore.errors import EventStoreError
from orders.eventstore.store import Append, EventStore, NewEvent, RecordedEvent, StreamStart


class GroupCommit:
    """`EventStore.start_stream` for concurrent callers, coalesced with no timer.

    While fewer than `max_in_flight` statements of this instance are in flight, a start goes
    out at once on its own, so a lone request waits for nothing. Otherwise it queues, and the
    queue goes out as one statement and one commit (`EventStore.start_streams`) as soon as a
    statement returns or `max_batch` starts have queued, whichever comes first. Batches grow
    with the load, and a statement stuck on a lock holds the queue back at most until
    `max_batch` more have arrived or its lock timeout ends.

    The answers are those of separate starts: duplicates within a batch get the first one's
    event, as replays. A batch that fails on a stuck stream (AppendBlocked) or on a row the
    database refuses is retried one start at a time, so only the culprit fails, and its
    batch-mates wait at most one `lock_timeout` longer; a database that is unreachable
    (StoreUnavailable) fails the whole batch, as it would each start.

    The sizes were measured at 64 connections on `orders serve --workers 2` (pool of 8 per
    worker, the shared 2-core machine, four alternating 8 s runs each). With one statement in
    flight per worker, batches averaged 12 creates; PostgreSQL spent 0.15-0.19 ms and the
    service 0.93-1.25 ms of CPU per create. With two, batches of 7, 0.22-0.27 and 1.23-1.40 ms,
    and no better rate in any run; three and four made smaller batches still. Creates are
    CPU-bound, so the fewest statements win, and the worker goes on parsing requests while
    its one statement is out. MAX_BATCH: run one after another, a statement costs PostgreSQL
    about 1.0 ms of CPU per create alone, 0.20 in batches of 16, 0.14 of 32 and 0.10 of 64;
    beyond 64 little is left to gain, and a batch of 64 still commits in a few milliseconds.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        then: str = "",
        max_in_flight: int = MAX_IN_FLIGHT,
        max_batch: int = MAX_BATCH,
        on_batch: Callable[[Batch], None] | None = None,
    ) -> None:
        async def one(start: tuple[str, NewEvent]) -> StreamStart:
            return await store.start_stream(*start, then=then)

        async def many(starts: list[tuple[str, NewEvent]]) -> list[StreamStart]:
            return await store.start_streams(starts, then=then)

        self._starts: Coalescer[tuple[str, NewEvent], StreamStart] = Coalescer(
            one,
            many,
            itemgetter(0),
            max_in_flight=max_in_flight,
            max_batch=max_batch,
            on_batch=on_batch,
        )

    async def start_stream(self, stream_id: str, event: NewEvent) -> StreamStart:
        """As `EventStore.start_stream` (with this instance's `then`)."""
        return await self._starts.submit((stream_id, event))


class GroupAppend:
    """`EventStore.append` of one event at an exact expected version (compare-and-set) for
    concurrent callers, coalesced as `GroupCommit` coalesces starts: one at once when no
    statement of this instance is out, else queued for the next one
    (`EventStore.append_each`, one statement and one commit).

    Each caller gets what an append of its own would have given: its recorded event, or
    WrongExpectedVersion with the stream's actual version when another writer got there
    first, in this batch or any other, in this process or any other (the unique (stream,
    version) decides every race; nothing is ever written with ON CONFLICT DO NOTHING). Two
    appends to one stream in one batch are appended in turn (the later one, at the version
    both read, is refused). A batch that collides with a writer that won after its snapshot
    is appended one by one by the store, so only the real loser is refused; one stuck on a
    stream past `lock_timeout` (AppendBlocked) is retried one append at a time here, so only
    the stuck one fails; StoreUnavailable fails the batch.

    A separate instance from the starts' (and its own statement in flight): lifecycle
    commands and creates do not wait for each other's statements, and each batch is of one
    statement's kind.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        then: str = "",
        max_in_flight: int = MAX_IN_FLIGHT,
        max_batch: int = MAX_BATCH,
        on_batch: Callable[[Batch], None] | None = None,
    ) -> None:
        async def one(append: Append) -> RecordedEvent:
            [recorded] = await store.append(
                append.stream_id, [append.event], append.expected, then=then
            )
            return recorded

        async def many(appends: list[Append]) -> list[RecordedEvent | EventStoreError]:
            return await store.append_each(appends, then=then)

        self._appends: Coalescer[Append, RecordedEvent] = Coalescer(
            one,
            many,
            attrgetter("stream_id"),
            max_in_flight=max_in_flight,
            max_batch=max_batch,
            on_batch=on_batch,
        )

    async def append(self, stream_id: str, event: NewEvent, expected: int) -> RecordedEvent:
        """As `EventStore.append` of `[event]` at version `expected` (with this instance's
        `then`): raises WrongExpectedVersion, AppendBlocked or StoreUnavailable."""
        return await self._appends.submit(Append(stream_id, event, expected))
