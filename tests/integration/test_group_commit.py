"""Group commit: concurrent stream starts share statements, and each still gets the answer a
start of its own would have had."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest
import pytest_asyncio

from orders.eventstore import AppendBlocked, Batch, EventStore, GroupCommit, NewEvent, StreamStart
from orders.eventstore.pool import create_pool
from tests.integration.test_event_store_contract import _until_waiting_on_a_lock

# Short, so that a start stuck behind an uncommitted row fails quickly.
LOCK_TIMEOUT_MS = 300
# Long: the stuck start must still be waiting when the test looks.
PATIENT_LOCK_TIMEOUT_MS = 60_000
# Bounds only a hang (a start waiting on the held row when it should not be).
HANG_SECONDS = 30


def event(n: int) -> NewEvent:
    return NewEvent("Happened", msgspec.json.encode({"n": n}))


def new_stream() -> str:
    return f"group-{uuid.uuid4()}"


@pytest_asyncio.fixture(loop_scope="session")
async def holder(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection that writes a stream's first event and leaves it uncommitted, as a first
    request on another replica whose transaction is stuck."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()  # ends its transaction, if the test left one open


async def hold(holder: asyncpg.Connection, stream_id: str) -> None:
    await holder.execute("BEGIN")
    await holder.execute(
        "INSERT INTO events (stream_id, version, event_type, data) "
        "VALUES ($1, 1, 'Held', '{}'::jsonb)",
        stream_id,
    )


async def test_a_lone_start_goes_out_at_once_in_a_batch_of_one(store: EventStore) -> None:
    batches: list[Batch] = []
    group = GroupCommit(store, on_batch=batches.append)

    start = await group.start_stream(new_stream(), event(1))

    assert start.started
    assert batches == [Batch(size=1, queued=False)]


async def test_starts_that_arrive_while_a_statement_is_out_share_the_next_one(
    store: EventStore,
) -> None:
    batches: list[Batch] = []
    group = GroupCommit(store, max_in_flight=1, on_batch=batches.append)
    streams = [new_stream() for _ in range(10)]

    starts = await asyncio.gather(*(group.start_stream(s, event(n)) for n, s in enumerate(streams)))

    assert batches == [Batch(size=1, queued=False), Batch(size=9, queued=True)]
    assert all(start.started for start in starts)
    for n, (stream, start) in enumerate(zip(streams, starts, strict=True)):
        assert [e.data for e in await store.read_stream(stream)] == [start.first.data]
        assert msgspec.json.decode(start.first.data) == {"n": n}


async def test_a_stream_named_twice_in_a_batch_starts_once_and_the_later_one_replays(
    store: EventStore,
) -> None:
    repeated, other = new_stream(), new_stream()

    starts = await store.start_streams(
        [(repeated, event(1)), (other, event(2)), (repeated, event(3))]
    )

    assert [start.started for start in starts] == [True, True, False]
    assert starts[2].first == starts[0].first
    assert msgspec.json.decode(starts[0].first.data) == {"n": 1}
    assert len(await store.read_stream(repeated)) == 1


async def test_a_batch_returns_the_first_events_of_streams_already_there(
    store: EventStore,
) -> None:
    existing, new = new_stream(), new_stream()
    first = await store.start_stream(existing, event(1))

    starts = await store.start_streams([(new, event(2)), (existing, event(3))])

    assert [start.started for start in starts] == [True, False]
    assert starts[1].first == first.first


async def test_a_batch_waiting_on_an_uncommitted_winner_returns_the_winner(
    store: EventStore, holder: asyncpg.Connection
) -> None:
    contested, new = new_stream(), new_stream()
    await hold(holder, contested)
    waiting = asyncio.create_task(store.start_streams([(new, event(1)), (contested, event(2))]))
    await _until_waiting_on_a_lock(holder)
    await holder.execute("COMMIT")
    starts = await waiting

    assert [start.started for start in starts] == [True, False]
    assert starts[1].first.type == "Held"
    assert starts[1].first == (await store.read_stream(contested))[0]


async def test_a_stuck_stream_fails_alone_and_its_batch_mates_do_not_wait_for_it(
    database_url: str, holder: asyncpg.Connection
) -> None:
    stuck, lone = new_stream(), new_stream()
    mates = [new_stream() for _ in range(3)]
    await hold(holder, stuck)
    pool = await create_pool(database_url, size=8, lock_timeout_ms=LOCK_TIMEOUT_MS)
    batches: list[Batch] = []
    group = GroupCommit(EventStore(pool), max_in_flight=1, on_batch=batches.append)
    try:
        lone_start = asyncio.create_task(group.start_stream(lone, event(0)))
        # They arrive while `lone` is out, so they go out together, `stuck` among them.
        stuck_start = asyncio.create_task(group.start_stream(stuck, event(1)))
        mate_starts = [asyncio.create_task(group.start_stream(m, event(2))) for m in mates]
        # Answered while the row is still held: none of them waited for its winner.
        async with asyncio.timeout(HANG_SECONDS):
            answered = await asyncio.gather(lone_start, *mate_starts)
        with pytest.raises(AppendBlocked):
            await stuck_start
    finally:
        await holder.execute("ROLLBACK")
        await pool.close()

    assert batches == [Batch(size=1, queued=False), Batch(size=4, queued=True)]
    assert all(start.started for start in answered)


async def test_a_full_batch_goes_out_while_the_statement_in_flight_is_stuck(
    database_url: str, holder: asyncpg.Connection
) -> None:
    stuck = new_stream()
    queued = [new_stream() for _ in range(3)]
    await hold(holder, stuck)
    pool = await create_pool(database_url, size=8, lock_timeout_ms=PATIENT_LOCK_TIMEOUT_MS)
    batches: list[Batch] = []
    group = GroupCommit(EventStore(pool), max_in_flight=1, max_batch=3, on_batch=batches.append)
    try:
        stuck_start = asyncio.create_task(group.start_stream(stuck, event(1)))
        await _until_waiting_on_a_lock(holder)
        async with asyncio.timeout(HANG_SECONDS):
            answered = await asyncio.gather(*(group.start_stream(s, event(2)) for s in queued))
        assert not stuck_start.done()
    finally:
        await holder.execute("ROLLBACK")
    try:
        async with asyncio.timeout(HANG_SECONDS):
            unstuck = await stuck_start
    finally:
        await pool.close()

    assert batches == [Batch(size=1, queued=False), Batch(size=3, queued=True)]
    assert all(start.started for start in answered)
    assert unstuck.started  # the held row was rolled back: the stream was free after all


async def test_a_row_the_database_refuses_fails_alone(store: EventStore) -> None:
    group = GroupCommit(store, max_in_flight=1)
    good = [new_stream() for _ in range(3)]
    bad = new_stream()
    not_json = NewEvent("Happened", b"{not json")

    outcomes = await asyncio.gather(
        group.start_stream(new_stream(), event(0)),
        group.start_stream(good[0], event(1)),
        group.start_stream(bad, not_json),
        group.start_stream(good[1], event(2)),
        group.start_stream(good[2], event(3)),
        return_exceptions=True,
    )

    assert isinstance(outcomes[2], asyncpg.DataError)
    assert all(isinstance(o, StreamStart) and o.started for i, o in enumerate(outcomes) if i != 2)
    assert await store.read_stream(bad) == []
    for stream in good:
        assert len(await store.read_stream(stream)) == 1
