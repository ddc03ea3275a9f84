"""Group commit for compare-and-set appends: concurrent appends to existing streams share
statements, and each still gets the answer an append of its own would have had, whoever
races it in the same batch, in another batch or in another transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest
import pytest_asyncio

from orders.eventstore import (
    Append,
    AppendBlocked,
    Batch,
    EventStore,
    GroupAppend,
    NewEvent,
    RecordedEvent,
    WrongExpectedVersion,
)
from orders.eventstore.pool import create_pool
from tests.integration.test_event_store_contract import _until_waiting_on_a_lock

# Short, so that an append stuck behind an uncommitted row fails quickly.
LOCK_TIMEOUT_MS = 300
# Bounds only a hang.
HANG_SECONDS = 30


def event(n: int) -> NewEvent:
    return NewEvent("Happened", msgspec.json.encode({"n": n}))


async def started_stream(store: EventStore, events: int = 1) -> str:
    """A new stream with `events` events already in it."""
    stream_id = f"append-{uuid.uuid4()}"
    await store.append(stream_id, [event(i) for i in range(events)], "no_stream")
    return stream_id


async def versions(store: EventStore, stream_id: str) -> list[int]:
    return [e.version for e in await store.read_stream(stream_id)]


@pytest_asyncio.fixture(loop_scope="session")
async def holder(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection that appends a stream's next event and leaves it uncommitted, as a writer on
    another replica whose transaction has not finished."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()  # ends its transaction, if the test left one open


async def hold(holder: asyncpg.Connection, stream_id: str, version: int) -> None:
    await holder.execute("BEGIN")
    await holder.execute(
        "INSERT INTO events (stream_id, version, event_type, data) "
        "VALUES ($1, $2, 'Held', '{}'::jsonb)",
        stream_id,
        version,
    )


async def test_a_batch_appends_each_stream_at_its_next_version(store: EventStore) -> None:
    streams = [await started_stream(store, events=n) for n in (1, 2, 3)]

    outcomes = await store.append_each(
        [Append(s, event(10 + n), n) for n, s in zip((1, 2, 3), streams, strict=True)]
    )

    assert all(isinstance(o, RecordedEvent) for o in outcomes)
    assert [o.version for o in outcomes if isinstance(o, RecordedEvent)] == [2, 3, 4]
    for n, stream in zip((1, 2, 3), streams, strict=True):
        assert await versions(store, stream) == list(range(1, n + 2))


async def test_a_stale_member_is_refused_with_the_actual_version_and_the_rest_append(
    store: EventStore,
) -> None:
    moved_on = await started_stream(store, events=3)
    fresh = [await started_stream(store) for _ in range(2)]

    outcomes = await store.append_each(
        [
            Append(fresh[0], event(1), 1),
            Append(moved_on, event(2), 1),
            Append(fresh[1], event(3), 1),
        ]
    )

    refused = outcomes[1]
    assert isinstance(refused, WrongExpectedVersion)
    assert (refused.stream_id, refused.expected, refused.actual) == (moved_on, 1, 3)
    assert isinstance(outcomes[0], RecordedEvent) and isinstance(outcomes[2], RecordedEvent)
    assert await versions(store, moved_on) == [1, 2, 3]


async def test_racers_on_one_stream_in_one_batch_make_one_event_and_the_later_is_refused(
    store: EventStore,
) -> None:
    raced = await started_stream(store)
    other = await started_stream(store)

    first, mate, second = await store.append_each(
        [Append(raced, event(1), 1), Append(other, event(2), 1), Append(raced, event(3), 1)]
    )

    assert isinstance(first, RecordedEvent) and first.version == 2
    assert isinstance(mate, RecordedEvent) and mate.version == 2
    assert isinstance(second, WrongExpectedVersion) and second.actual == 2
    recorded = await store.read_stream(raced)
    assert [msgspec.json.decode(e.data) for e in recorded[1:]] == [{"n": 1}]


async def test_a_later_append_in_the_same_batch_at_the_next_version_appends_after_the_first(
    store: EventStore,
) -> None:
    stream = await started_stream(store)

    outcomes = await store.append_each([Append(stream, event(1), 1), Append(stream, event(2), 2)])

    assert [o.version for o in outcomes if isinstance(o, RecordedEvent)] == [2, 3]


async def test_racers_on_one_stream_across_batches_make_one_event_per_version(
    store: EventStore,
) -> None:
    raced = await started_stream(store)
    mates = [[await started_stream(store) for _ in range(3)] for _ in range(4)]

    batches = await asyncio.gather(
        *(
            store.append_each(
                [Append(raced, event(b), 1), *(Append(m, event(b), 1) for m in batch_mates)]
            )
            for b, batch_mates in enumerate(mates)
        )
    )

    winners = [b for b, outcomes in enumerate(batches) if isinstance(outcomes[0], RecordedEvent)]
    assert len(winners) == 1
    for outcomes in batches:
        assert isinstance(outcomes[0], RecordedEvent) or (
            isinstance(outcomes[0], WrongExpectedVersion) and outcomes[0].actual == 2
        )
        assert all(isinstance(o, RecordedEvent) and o.version == 2 for o in outcomes[1:])
    recorded = await store.read_stream(raced)
    assert [e.version for e in recorded] == [1, 2]
    assert msgspec.json.decode(recorded[1].data) == {"n": winners[0]}


async def test_a_member_that_collides_after_the_snapshot_alone_is_refused(
    database_url: str, holder: asyncpg.Connection, store: EventStore
) -> None:
    contested = await started_stream(store)
    mates = [await started_stream(store) for _ in range(3)]
    await hold(holder, contested, 2)
    batch = [Append(contested, event(1), 1), *(Append(m, event(2), 1) for m in mates)]

    # The batch passes every guard (the held row is invisible to it), then waits on that row.
    appending = asyncio.create_task(store.append_each(batch))
    await _until_waiting_on_a_lock(holder)
    await holder.execute("COMMIT")
    async with asyncio.timeout(HANG_SECONDS):
        lost, *won = await appending

    assert isinstance(lost, WrongExpectedVersion) and lost.actual == 2
    assert all(isinstance(o, RecordedEvent) and o.version == 2 for o in won)
    assert [e.type for e in await store.read_stream(contested)] == ["Happened", "Held"]


async def test_a_lone_append_goes_out_at_once_and_concurrent_ones_share_the_next_statement(
    store: EventStore,
) -> None:
    streams = [await started_stream(store) for _ in range(5)]
    batches: list[Batch] = []
    group = GroupAppend(store, max_in_flight=1, on_batch=batches.append)

    recorded = await asyncio.gather(*(group.append(s, event(1), 1) for s in streams))

    assert batches == [Batch(size=1, queued=False), Batch(size=4, queued=True)]
    assert [(e.stream_id, e.version) for e in recorded] == [(s, 2) for s in streams]


async def test_grouped_racers_on_one_stream_get_one_event_and_one_wrong_version(
    store: EventStore,
) -> None:
    raced = await started_stream(store)
    group = GroupAppend(store, max_in_flight=1)

    outcomes = await asyncio.gather(
        *(group.append(raced, event(n), 1) for n in range(4)), return_exceptions=True
    )

    assert sum(isinstance(o, RecordedEvent) for o in outcomes) == 1
    refused = [o for o in outcomes if not isinstance(o, RecordedEvent)]
    assert all(isinstance(o, WrongExpectedVersion) and o.actual == 2 for o in refused)
    assert await versions(store, raced) == [1, 2]


async def test_a_stuck_stream_fails_alone_and_its_batch_mates_do_not_wait_for_it(
    database_url: str, holder: asyncpg.Connection, store: EventStore
) -> None:
    stuck, lone = await started_stream(store), await started_stream(store)
    mates = [await started_stream(store) for _ in range(3)]
    await hold(holder, stuck, 2)
    pool = await create_pool(database_url, size=8, lock_timeout_ms=LOCK_TIMEOUT_MS)
    batches: list[Batch] = []
    group = GroupAppend(EventStore(pool), max_in_flight=1, on_batch=batches.append)
    try:
        lone_append = asyncio.create_task(group.append(lone, event(0), 1))
        # They arrive while `lone` is out, so they go out together, `stuck` among them.
        stuck_append = asyncio.create_task(group.append(stuck, event(1), 1))
        mate_appends = [asyncio.create_task(group.append(m, event(2), 1)) for m in mates]
        async with asyncio.timeout(HANG_SECONDS):
            answered = await asyncio.gather(lone_append, *mate_appends)
        with pytest.raises(AppendBlocked):
            await stuck_append
    finally:
        await holder.execute("ROLLBACK")
        await pool.close()

    assert batches == [Batch(size=1, queued=False), Batch(size=4, queued=True)]
    assert all(e.version == 2 for e in answered)
    assert await versions(store, stuck) == [1]
