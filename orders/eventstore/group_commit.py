"""Group commit: the stream starts, and the compare-and-set appends, of one process share
statements and commits under load."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from operator import attrgetter, itemgetter
from typing import Final, Generic, NamedTuple, TypeVar

from orders.eventstore.errors import EventStoreError, StoreUnavailable
from orders.eventstore.store import Append, EventStore, NewEvent, RecordedEvent, StreamStart

MAX_IN_FLIGHT: Final = 1
MAX_BATCH: Final = 64


class Batch(NamedTuple):
    """What one statement carried: how many starts (or appends), and whether they had waited
    for it."""

    size: int
    queued: bool


T = TypeVar("T")
R = TypeVar("R")


class _Queued(NamedTuple, Generic[T, R]):
    item: T
    answer: asyncio.Future[R]


class _Coalescer(Generic[T, R]):
    """Coalesces concurrent calls of a store operation that has a form for one item (`one`)
    and a form for many in one statement (`many`, an outcome for each item in order: its
    result or its error); `stream_of` names the stream an item writes. The policy is the one
    `GroupCommit` describes."""

    def __init__(
        self,
        one: Callable[[T], Awaitable[R]],
        many: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]],
        stream_of: Callable[[T], str],
        *,
        max_in_flight: int,
        max_batch: int,
        on_batch: Callable[[Batch], None] | None,
    ) -> None:
        self._one = one
        self._many = many
        self._stream_of = stream_of
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._on_batch = on_batch
        self._in_flight = 0
        self._queue: list[_Queued[T, R]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        if self._in_flight < self._max_in_flight and not self._queue:
            self._sent(1, queued=False)
            try:
                return await self._one(item)
            finally:
                self._returned()
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(item, answer))
        if len(self._queue) >= self._max_batch:
            self._send_queue()
        return await answer

    def _sent(self, size: int, *, queued: bool) -> None:
        self._in_flight += 1
        if self._on_batch is not None:
            self._on_batch(Batch(size, queued))

    def _returned(self) -> None:
        """A statement has returned: its slot goes to what has queued meanwhile."""
        self._in_flight -= 1
        if self._queue:
            self._send_queue()

    def _send_queue(self) -> None:
        batch = self._queue[: self._max_batch]
        del self._queue[: self._max_batch]
        self._sent(len(batch), queued=True)
        task = asyncio.create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Queued[T, R]]) -> None:
        try:
            try:
                outcomes = await self._many([q.item for q in batch])
            finally:
                self._returned()
        except StoreUnavailable as exc:
            _answer(batch, [exc] * len(batch))
        except Exception as exc:  # AppendBlocked, or a row the database refused
            if len({self._stream_of(q.item) for q in batch}) == 1:
                _answer(batch, [exc] * len(batch))
            else:
                await self._one_by_one(batch)
        except BaseException:
            for queued in batch:
                queued.answer.cancel()
            raise
        else:
            _answer(batch, outcomes)

    async def _one_by_one(self, batch: list[_Queued[T, R]]) -> None:
        """Each item of a failed batch on its own, at once: only the culprit fails."""
        outcomes = await asyncio.gather(*(self._one(q.item) for q in batch), return_exceptions=True)
        _answer(batch, outcomes)


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

        self._starts: _Coalescer[tuple[str, NewEvent], StreamStart] = _Coalescer(
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

        self._appends: _Coalescer[Append, RecordedEvent] = _Coalescer(
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


def _answer(batch: Sequence[_Queued[T, R]], outcomes: Sequence[R | BaseException]) -> None:
    for queued, outcome in zip(batch, outcomes, strict=True):
        if queued.answer.done():  # its caller has gone (cancelled)
            continue
        if isinstance(outcome, BaseException):
            queued.answer.set_exception(outcome)
        else:
            queued.answer.set_result(outcome)
