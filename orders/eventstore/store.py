"""The PostgreSQL event store: append, read a stream, read everything in a gap-safe order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from orders.eventstore import sql
from orders.eventstore.errors import (
    AppendBlocked,
    EventStoreError,
    StoreUnavailable,
    StreamAlreadyExists,
    WrongExpectedVersion,
)
from orders.eventstore.notify import AppendNotifier
from orders.eventstore.syncrep import SyncRepWatch

NO_STREAM: Final = "no_stream"
ANY: Final = "any"
ExpectedVersion = Literal["no_stream", "any"] | int
"""`"no_stream"`: the stream must not exist; `"any"`: append at the end, whatever it is;
an int: the stream must be at exactly that version."""

BarrierMode = Literal["off", "auto", "always"]
"""When an answer from an event this process did not append waits for the synchronous
standbys: never, when the server has them configured, or always."""

# "any" retries when a concurrent writer took the next version first; each retry re-reads the
# current version, so only a stream under heavy contention can exhaust this.
_ANY_ATTEMPTS = 10


class Position(NamedTuple):
    """A place in `read_all` order; store it as a checkpoint and pass it back as `after`."""

    tx_id: int
    position: int


START = Position(0, 0)


class NewEvent(msgspec.Struct, frozen=True):
    """An event to append: its type name and its data and metadata as JSON documents."""

    type: str
    data: bytes
    metadata: bytes = b"{}"


class RecordedEvent(msgspec.Struct, frozen=True):
    """An event as stored: where it stands in its stream and in the whole store."""

    position: int
    stream_id: str
    version: int
    type: str
    data: bytes
    metadata: bytes
    tx_id: int
    recorded_at: datetime

    @property
    def checkpoint(self) -> Position:
        return Position(self.tx_id, self.position)


class StreamStart(NamedTuple):
    """The first event of a stream, and whether this call is the one that appended it."""

    first: RecordedEvent
    started: bool


class Append(NamedTuple):
    """One compare-and-set append of many (`EventStore.append_each`): `event` as version
    `expected` + 1 of `stream_id`, if the stream is still at `expected`."""

    stream_id: str
    event: NewEvent
    expected: int


class EventStore:
    """Append-only event streams over an asyncpg pool (see `orders.eventstore.pool`), or over
    one connection, whose open transaction its appends and reads then join.

    `replication_barrier` says when an event this process did not append itself may be
    answered from: `start_streams` returns none before the synchronous standbys hold it, and
    `ensure_replicated` waits for them after a plain read (see `sql.ENSURE_REPLICATED`).
    """

    def __init__(
        self,
        pool: asyncpg.Pool | asyncpg.Connection,
        notifier: AppendNotifier | None = None,
        *,
        replication_barrier: BarrierMode = "auto",
    ) -> None:
        self._pool = pool
        self._notifier = notifier
        self._barrier = replication_barrier
        self._append_sql: dict[str, str] = {}
        self._starts_sql: dict[str, str] = {}
        self._append_each_sql: dict[str, str] = {}

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected: ExpectedVersion,
        *,
        then: str = "",
    ) -> list[RecordedEvent]:
        """Append `events` atomically to `stream_id` if it is at the `expected` version.

        `then` continues the statement's WITH list after the CTE `new_events` (the appended
        rows): an inline projection that commits or fails together with the append.

        Raises StreamAlreadyExists or WrongExpectedVersion on a conflict, AppendBlocked when a
        concurrent writer of the stream holds it past `lock_timeout`, StoreUnavailable when the
        database is unreachable or too slow.
        """
        if not events:
            raise ValueError("append needs at least one event")
        version = _expected_number(expected)
        args = (
            stream_id,
            version,
            [e.type for e in events],
            [e.data for e in events],
            [e.metadata for e in events],
        )
        statement = self._append_statement(then)
        attempts = _ANY_ATTEMPTS if expected == ANY else 1
        for attempt in range(attempts):
            try:
                with driver_errors(stream_id):
                    rows = await fetch_committed(self._pool, statement, *args)
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != "events_stream_version_key":
                    raise StoreUnavailable(f"unexpected constraint: {exc.constraint_name}") from exc
                if attempt + 1 < attempts:
                    continue
                if expected == NO_STREAM:
                    raise StreamAlreadyExists(stream_id) from None
                raise await self._wrong_version(stream_id, expected) from None
            if not rows:
                raise await self._wrong_version(stream_id, expected)
            if self._notifier is not None:
                self._notifier.poke()
            return [recorded_event(row) for row in rows]
        raise AssertionError("unreachable: the loop returns or raises")

    async def append_each(
        self, appends: Sequence[Append], *, then: str = ""
    ) -> list[RecordedEvent | EventStoreError]:
        """Each of `appends` as `append` with its exact expected version would make it, in one
        statement and one commit (group commit): for each, in order, its recorded event or
        the error `append` would raise (WrongExpectedVersion with the actual version,
        AppendBlocked, StoreUnavailable). `then` is as for `append`.

        A stream named more than once is appended in turn: its first append in the statement,
        the later ones each on its own after it, in order, as if they had come after it.
        Raises StoreUnavailable when the statement cannot reach the database, and
        AppendBlocked when it waited past `lock_timeout` on a concurrent writer; nothing is
        appended then, and the caller decides whether to try each on its own.
        """
        if not appends:
            return []
        firsts: dict[str, int] = {}
        for i, append in enumerate(appends):
            firsts.setdefault(append.stream_id, i)
        # Sorted: the statement takes its row locks in this order (see sql.APPEND_EACH).
        batch = [appends[firsts[stream_id]] for stream_id in sorted(firsts)]
        outcomes: dict[int, RecordedEvent | EventStoreError] = {}
        answered = await self._append_batch(batch, then)
        outcomes.update(zip((firsts[a.stream_id] for a in batch), answered, strict=True))
        for i in range(len(appends)):
            if i not in outcomes:  # a stream's later append, after its earlier ones, in turn
                [outcomes[i]] = await self._one_by_one([appends[i]], then)
        return [outcomes[i] for i in range(len(appends))]

    async def _append_batch(
        self, batch: list[Append], then: str
    ) -> list[RecordedEvent | EventStoreError]:
        """APPEND_EACH for appends to distinct streams, sorted by stream id."""
        if len(batch) == 1:
            return await self._one_by_one(batch, then)
        statement = self._append_each_sql.get(then)
        if statement is None:
            statement = self._append_each_sql[then] = sql.APPEND_EACH.format(then=then)
        try:
            with driver_errors(None):
                rows = await fetch_committed(
                    self._pool,
                    statement,
                    [a.stream_id for a in batch],
                    [_expected_number(a.expected) for a in batch],
                    [a.event.type for a in batch],
                    [a.event.data for a in batch],
                    [a.event.metadata for a in batch],
                )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "events_stream_version_key":
                raise StoreUnavailable(f"unexpected constraint: {exc.constraint_name}") from exc
            # A writer of one of these streams won after the snapshot: only it can say which.
            return await self._one_by_one(batch, then)
        appended = {row["stream_id"]: recorded_event(row) for row in rows}
        if appended and self._notifier is not None:
            self._notifier.poke()
        refused = [a.stream_id for a in batch if a.stream_id not in appended]
        actual: dict[str, int] = {}
        if refused:
            with driver_errors(None):
                rows = await self._pool.fetch(sql.STREAM_VERSIONS, refused)
            actual = {row["stream_id"]: row["version"] for row in rows}
        return [
            appended[a.stream_id]
            if a.stream_id in appended
            else WrongExpectedVersion(a.stream_id, a.expected, actual[a.stream_id])
            for a in batch
        ]

    async def _one_by_one(
        self, appends: Sequence[Append], then: str
    ) -> list[RecordedEvent | EventStoreError]:
        """Each of `appends` as its own `append`, concurrently, each with its own outcome."""
        outcomes = await asyncio.gather(
            *(self.append(a.stream_id, [a.event], a.expected, then=then) for a in appends),
            return_exceptions=True,
        )
        answers: list[RecordedEvent | EventStoreError] = []
        for outcome in outcomes:
            if isinstance(outcome, list):
                answers.append(outcome[0])
            elif isinstance(outcome, EventStoreError):
                answers.append(outcome)
            else:
                raise outcome
        return answers

    async def _wrong_version(
        self, stream_id: str, expected: ExpectedVersion
    ) -> WrongExpectedVersion:
        """The conflict, with the stream's version as a new statement (a new snapshot, which
        sees the writer that won) reads it."""
        with driver_errors(stream_id):
            actual: int = await self._pool.fetchval(sql.STREAM_VERSION, stream_id)
        return WrongExpectedVersion(stream_id, expected, actual)

    async def start_stream(self, stream_id: str, event: NewEvent, *, then: str = "") -> StreamStart:
        """Append `event` as the first of a new stream or, if the stream exists, return its
        first event instead: create-or-get in one round trip, with no error on a conflict.

        `then` is as for `append` (it sees the appended row only when there is one). A
        concurrent first append of the same stream is waited for; past `lock_timeout` this
        raises AppendBlocked. StoreUnavailable as for `append`, and when the synchronous
        standbys do not confirm the commit in time: an event found rather than appended is
        returned only once they hold it (the replication barrier), as an appended one is.
        """
        [start] = await self.start_streams([(stream_id, event)], then=then)
        return start

    async def start_streams(
        self, starts: Sequence[tuple[str, NewEvent]], *, then: str = ""
    ) -> list[StreamStart]:
        """`start_stream` for many streams in one statement and one commit (group commit): a
        StreamStart for each of `starts`, in order.

        A stream named more than once is started once, with its first event; the later ones
        get that event back with `started` false, exactly as if they had come after it. All or
        nothing: if any stream waits past `lock_timeout` on a concurrent first append, nothing
        is appended and this raises AppendBlocked; StoreUnavailable as for `append`.
        """
        if not starts:
            return []
        firsts: dict[str, NewEvent] = {}
        for stream_id, event in starts:
            firsts.setdefault(stream_id, event)
        # Sorted: the statement takes its row locks in this order (see sql.START_STREAMS).
        stream_ids = sorted(firsts)
        events = [firsts[stream_id] for stream_id in stream_ids]
        statement = self._starts_sql.get(then)
        if statement is None:
            statement = self._starts_sql[then] = sql.START_STREAMS.format(then=then)
        with driver_errors(stream_ids[0] if len(stream_ids) == 1 else None):
            rows = await fetch_committed(
                self._pool,
                statement,
                stream_ids,
                [e.type for e in events],
                [e.data for e in events],
                [e.metadata for e in events],
                self._barrier,
            )
        found = {row["stream_id"]: StreamStart(recorded_event(row), row["started"]) for row in rows}
        if len(found) < len(stream_ids):
            # Winners that committed after the statement's snapshot: a new statement sees them.
            late = [stream_id for stream_id in stream_ids if stream_id not in found]
            with driver_errors(None):
                rows = await self._pool.fetch(sql.READ_FIRST_EVENTS, late)
            found.update(
                (row["stream_id"], StreamStart(recorded_event(row), False)) for row in rows
            )
            if len(found) < len(stream_ids):
                raise StoreUnavailable(f"{len(late)} streams conflicted but cannot be read")
        if self._notifier is not None and any(start.started for start in found.values()):
            self._notifier.poke()
        answered: set[str] = set()
        answers = []
        for stream_id, _ in starts:
            start = found[stream_id]
            answers.append(start if stream_id not in answered else start._replace(started=False))
            answered.add(stream_id)
        return answers

    async def ensure_replicated(self) -> None:
        """Return once the synchronous standbys hold every event this process has read so far,
        by committing a write of no consequence (the replication barrier, `sql.ENSURE_REPLICATED`):
        call it before answering from events read with a plain read, so that no answer
        rests on an event a failover may yet lose. At once when the mode is `off`; in `auto`
        a trivial round trip when the server has no synchronous standbys. StoreUnavailable
        when they do not confirm in time (the answer must then not be given)."""
        with driver_errors(None):
            await ensure_replicated(self._pool, self._barrier)

    async def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        """Every event of `stream_id` in version order; empty if the stream does not exist."""
        with driver_errors(stream_id):
            rows = await self._pool.fetch(sql.READ_STREAM, stream_id)
        return [recorded_event(row) for row in rows]

    async def read_all(self, after: Position = START, limit: int = 1000) -> list[RecordedEvent]:
        """Up to `limit` events after `after`, gap-safe (see `sql.READ_ALL`)."""
        with driver_errors(None):
            rows = await self._pool.fetch(sql.READ_ALL, after.tx_id, after.position, limit)
        return [recorded_event(row) for row in rows]

    async def head(self) -> Position:
        """The position of the newest event `read_all` can return now (START when empty)."""
        with driver_errors(None):
            row = await self._pool.fetchrow(sql.HEAD)
        return START if row is None else Position(row["tx_id"], row["position"])

    def _append_statement(self, then: str) -> str:
        statement = self._append_sql.get(then)
        if statement is None:
            statement = self._append_sql[then] = sql.APPEND.format(then=then)
        return statement


def _expected_number(expected: ExpectedVersion) -> int | None:
    """The version the append SQL compares with: 0 for no stream, NULL for any."""
    if expected == NO_STREAM:
        return 0
    if expected == ANY:
        return None
    if isinstance(expected, int) and expected >= 0:
        return expected
    raise ValueError(f"not an expected version: {expected!r}")


def recorded_event(row: asyncpg.Record) -> RecordedEvent:
    """A row with the columns of `events` as a RecordedEvent."""
    return RecordedEvent(
        position=row["position"],
        stream_id=row["stream_id"],
        version=row["version"],
        type=row["event_type"],
        data=row["data"],
        metadata=row["metadata"],
        tx_id=row["tx_id"],
        recorded_at=row["recorded_at"],
    )


async def ensure_replicated(database: asyncpg.Pool | asyncpg.Connection, mode: BarrierMode) -> None:
    """The replication barrier (`sql.ENSURE_REPLICATED`) on `database`, for any reader that
    hands on what it read (`EventStore.ensure_replicated`, the publisher): returns once the
    synchronous standbys hold every event read before the call. At once when `mode` is off;
    StoreUnavailable when the server cut the wait short (see `fetch_committed`)."""
    if mode != "off":
        await fetch_committed(database, sql.ENSURE_REPLICATED, mode)


async def fetch_committed(
    database: asyncpg.Pool | asyncpg.Connection, statement: str, *args: Any
) -> list[asyncpg.Record]:
    """`database.fetch(statement, *args)` for a statement that commits on its own (outside a
    transaction: the store's writes and its barrier), answered only if the synchronous standbys
    confirmed the commit. StoreUnavailable when the server cut its wait for them short
    (`pg_cancel_backend()` during the wait, see `orders.eventstore.syncrep`): the statement
    "succeeded", but only the primary holds its commit, so nothing of it may be acknowledged.
    Its caller answers 503, remembers nothing, and a retry of the key finds the event and
    answers it only after the replication barrier, as any event this process did not see
    confirmed.

    No extra round trip: a listener on the statement's connection for its duration (added and
    removed here: asyncpg's pool drops, with a warning, any log listener a connection still
    has when released, so one per connection cannot be set up once). A statement inside a
    transaction the caller opened commits later, at the caller's COMMIT, unwatched."""
    if isinstance(database, asyncpg.Pool):
        async with database.acquire() as connection:
            return await _fetch_watched(connection, statement, args)
    return await _fetch_watched(database, statement, args)


async def _fetch_watched(
    connection: asyncpg.Connection | PoolConnectionProxy[asyncpg.Record],
    statement: str,
    args: tuple[Any, ...],
) -> list[asyncpg.Record]:
    watch = SyncRepWatch()
    connection.add_log_listener(watch)
    try:
        rows = await connection.fetch(statement, *args)
    finally:
        connection.remove_log_listener(watch)
    # Final here: the listener has run before this coroutine resumed (see SyncRepWatch).
    if watch.cut_short:
        raise StoreUnavailable(
            "commit not confirmed: its wait for the synchronous standbys was cancelled"
        )
    return rows


@contextlib.contextmanager
def driver_errors(stream_id: str | None) -> Iterator[None]:
    """Turn the driver's failures into the store's errors; unique violations pass through
    for `append` to interpret."""
    try:
        yield
    except asyncpg.UniqueViolationError:
        raise
    except asyncpg.LockNotAvailableError as exc:
        raise AppendBlocked(stream_id or "") from exc
    except (
        OSError,
        TimeoutError,
        asyncpg.InterfaceError,
        # What asyncpg raises when the server ends a connection in the middle of a statement
        # (seen when PostgreSQL shuts down under load); the pool replaces the dead connection.
        asyncpg.InternalClientError,
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.AdminShutdownError,
        asyncpg.QueryCanceledError,
        # A session on a server that has become read-only (`default_transaction_read_only`
        # set to fence it); connections are only ever opened to a read-write primary.
        asyncpg.ReadOnlySQLTransactionError,
    ) as exc:
        raise StoreUnavailable(f"database unavailable: {type(exc).__name__}") from exc
