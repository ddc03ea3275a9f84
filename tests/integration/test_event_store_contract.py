"""What any event store must do, run against the PostgreSQL store."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import msgspec
import pytest

from orders.eventstore import (
    ANY,
    NO_STREAM,
    START,
    EventStore,
    NewEvent,
    StreamAlreadyExists,
    WrongExpectedVersion,
)
from orders.eventstore.pool import create_pool


def new_stream() -> str:
    return f"test-{uuid.uuid4()}"


def event(n: int) -> NewEvent:
    return NewEvent("Happened", msgspec.json.encode({"n": n}), b'{"request_id": "r"}')


async def test_appended_events_read_back_in_version_order(store: EventStore) -> None:
    stream = new_stream()
    recorded = await store.append(stream, [event(1), event(2), event(3)], NO_STREAM)

    assert [e.version for e in recorded] == [1, 2, 3]
    read = await store.read_stream(stream)
    assert read == recorded
    assert [msgspec.json.decode(e.data) for e in read] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert msgspec.json.decode(read[0].metadata) == {"request_id": "r"}


async def test_reading_a_missing_stream_gives_nothing(store: EventStore) -> None:
    assert await store.read_stream(new_stream()) == []


async def test_no_stream_append_to_an_existing_stream_is_refused(store: EventStore) -> None:
    stream = new_stream()
    await store.append(stream, [event(1)], NO_STREAM)

    with pytest.raises(StreamAlreadyExists):
        await store.append(stream, [event(2), event(3)], NO_STREAM)
    assert len(await store.read_stream(stream)) == 1


async def test_exact_version_appends_only_at_that_version(store: EventStore) -> None:
    stream = new_stream()
    await store.append(stream, [event(1)], NO_STREAM)

    appended = await store.append(stream, [event(2)], 1)
    assert [e.version for e in appended] == [2]
    for stale_or_ahead in (0, 1, 3, 7):
        with pytest.raises(WrongExpectedVersion) as refused:
            await store.append(stream, [event(9)], stale_or_ahead)
        assert refused.value.actual == 2, "the conflict reports the stream's real version"
    assert [e.version for e in await store.read_stream(stream)] == [1, 2]


async def test_exact_version_on_a_missing_stream_is_refused(store: EventStore) -> None:
    with pytest.raises(WrongExpectedVersion) as refused:
        await store.append(new_stream(), [event(1)], 3)
    assert refused.value.actual == 0


async def test_any_appends_at_the_end_whatever_the_version(store: EventStore) -> None:
    stream = new_stream()
    await store.append(stream, [event(1)], ANY)
    await store.append(stream, [event(2), event(3)], ANY)
    assert [e.version for e in await store.read_stream(stream)] == [1, 2, 3]


async def test_read_all_continues_from_a_checkpoint(store: EventStore) -> None:
    before = await store.head()
    stream = new_stream()
    recorded = await store.append(stream, [event(1), event(2)], NO_STREAM)

    seen = await store.read_all(after=before)
    assert seen == recorded
    assert await store.read_all(after=seen[-1].checkpoint) == []
    assert await store.head() == recorded[-1].checkpoint
    assert (await store.read_all(after=START, limit=1))[0].position >= 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET data = '{}'::jsonb",
        "DELETE FROM events",
        "TRUNCATE events",
    ],
)
async def test_events_cannot_be_changed_or_removed(
    store: EventStore, pool: asyncpg.Pool, statement: str
) -> None:
    await store.append(new_stream(), [event(1)], NO_STREAM)
    count = await pool.fetchval("SELECT count(*) FROM events")

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute(statement)
    assert await pool.fetchval("SELECT count(*) FROM events") == count


async def test_starting_an_existing_stream_returns_its_first_event(store: EventStore) -> None:
    stream = new_stream()
    first = await store.start_stream(stream, event(1))
    again = await store.start_stream(stream, event(2))

    assert first.started and not again.started
    assert again.first == first.first
    assert [e.version for e in await store.read_stream(stream)] == [1]


async def test_concurrent_starts_of_one_stream_agree_on_one_winner(
    store: EventStore, database_url: str
) -> None:
    stream = new_stream()
    # Separate pools stand for separate replicas; each start runs on its own connection.
    pools = [await create_pool(database_url, size=4) for _ in range(2)]
    try:
        stores = [EventStore(p) for p in pools]
        starts = await asyncio.gather(
            *(stores[n % 2].start_stream(stream, event(n)) for n in range(16))
        )
    finally:
        for p in pools:
            await p.close()

    assert sum(start.started for start in starts) == 1
    assert len({start.first for start in starts}) == 1
    assert len(await store.read_stream(stream)) == 1


async def test_a_start_waiting_on_an_uncommitted_winner_returns_the_winner(
    store: EventStore, database_url: str
) -> None:
    stream = new_stream()
    holder = await asyncpg.connect(database_url)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute(
            "INSERT INTO events (stream_id, version, event_type, data) "
            "VALUES ($1, 1, 'Happened', '{\"n\": 0}')",
            stream,
        )
        waiting = asyncio.create_task(store.start_stream(stream, event(1)))
        await _until_waiting_on_a_lock(holder)
        assert not waiting.done()
        await transaction.commit()
        start = await waiting
    finally:
        await holder.close()

    assert not start.started
    assert msgspec.json.decode(start.first.data) == {"n": 0}


async def _until_waiting_on_a_lock(conn: asyncpg.Connection) -> None:
    """Return once some other backend waits on a lock (bounded: 10 s)."""
    async with asyncio.timeout(10):
        # The condition lives in the database, so there is no in-process event to await.
        while not await conn.fetchval(  # noqa: ASYNC110
            "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database() AND pid <> pg_backend_pid()"
        ):
            await asyncio.sleep(0.01)


async def test_connections_are_handed_out_in_the_order_they_were_asked_for(
    database_url: str,
) -> None:
    pool = await create_pool(database_url, size=2)
    asked: list[int] = []
    served: list[int] = []

    async def client(number: int) -> None:
        # Each client asks again as soon as it gives its connection back: exactly the moment
        # at which asyncpg's own queue lets a newcomer pass a woken waiter.
        for turn in range(20):
            ticket = number * 100 + turn
            asked.append(ticket)
            async with pool.acquire() as connection:
                served.append(ticket)
                await connection.execute("SELECT 1")

    try:
        await asyncio.gather(*(client(n) for n in range(8)))
    finally:
        await pool.close()

    assert served == asked
