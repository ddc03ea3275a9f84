"""Compare-and-set appends in batches, with hypothesis choosing them: each batch's answers are
those of its appends made one after another, and batches racing on shared streams from two
pools (two replicas) make exactly one event per version, each refusal naming a version the
stream really reached."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.eventstore import Append, EventStore, NewEvent, RecordedEvent, WrongExpectedVersion
from orders.eventstore.pool import create_pool

REPLICAS = 2
STREAMS = 4

APPEND_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pools(database_url: str) -> AsyncIterator[list[asyncpg.Pool]]:
    """Separate pools, as separate service replicas would have."""
    pools = [await create_pool(database_url, size=4) for _ in range(REPLICAS)]
    yield pools
    for pool in pools:
        await pool.close()


def happened(n: int) -> NewEvent:
    return NewEvent("Happened", msgspec.json.encode({"n": n}))


async def started(store: EventStore, lengths: list[int]) -> list[str]:
    """New streams of the given lengths (0: no stream)."""
    prefix = f"cas-{uuid.uuid4()}"
    for i, length in enumerate(lengths):
        if length:
            await store.append(f"{prefix}-{i}", [happened(-1)] * length, "no_stream")
    return [f"{prefix}-{i}" for i in range(len(lengths))]


@APPEND_SETTINGS
@given(
    lengths=st.lists(st.integers(0, 3), min_size=STREAMS, max_size=STREAMS),
    appends=st.lists(
        st.tuples(st.integers(0, STREAMS - 1), st.integers(0, 4)), min_size=1, max_size=10
    ),
)
async def test_a_batch_answers_as_its_appends_one_after_another_would(
    pools: list[asyncpg.Pool], lengths: list[int], appends: list[tuple[int, int]]
) -> None:
    store = EventStore(pools[0])
    streams = await started(store, lengths)
    batch = [Append(streams[s], happened(n), expected) for n, (s, expected) in enumerate(appends)]

    outcomes = await store.append_each(batch)

    version = dict(zip(streams, lengths, strict=True))
    for append, outcome in zip(batch, outcomes, strict=True):
        if version[append.stream_id] == append.expected:
            version[append.stream_id] += 1
            assert isinstance(outcome, RecordedEvent)
            assert (outcome.stream_id, outcome.version) == (append.stream_id, append.expected + 1)
            assert msgspec.json.decode(outcome.data) == msgspec.json.decode(append.event.data)
        else:
            assert isinstance(outcome, WrongExpectedVersion)
            assert outcome.actual == version[append.stream_id]
    for stream_id in streams:
        recorded = await store.read_stream(stream_id)
        assert [e.version for e in recorded] == list(range(1, version[stream_id] + 1))


@APPEND_SETTINGS
@given(
    batches=st.lists(
        st.tuples(
            st.integers(0, REPLICAS - 1),
            st.lists(st.integers(0, STREAMS - 1), min_size=1, max_size=6),
        ),
        min_size=2,
        max_size=5,
    )
)
async def test_racing_batches_make_one_event_per_version_and_refuse_with_a_real_version(
    pools: list[asyncpg.Pool], batches: list[tuple[int, list[int]]]
) -> None:
    """Every append expects its stream at version 1, as racers that all read it there."""
    stores = [EventStore(pool) for pool in pools]
    streams = await started(stores[0], [1] * STREAMS)
    requests = [
        [Append(streams[s], happened(b * 100 + slot), 1) for slot, s in enumerate(chosen)]
        for b, (_, chosen) in enumerate(batches)
    ]

    answers = await asyncio.gather(
        *(stores[replica].append_each(r) for (replica, _), r in zip(batches, requests, strict=True))
    )

    winners: dict[str, list[object]] = {s: [] for s in streams}
    for request, outcomes in zip(requests, answers, strict=True):
        for append, outcome in zip(request, outcomes, strict=True):
            if isinstance(outcome, RecordedEvent):
                assert outcome.version == 2
                winners[append.stream_id].append(msgspec.json.decode(append.event.data))
            else:
                assert isinstance(outcome, WrongExpectedVersion)
                assert outcome.actual == 2
    for stream_id in streams:
        recorded = await stores[0].read_stream(stream_id)
        asked = any(a.stream_id == stream_id for r in requests for a in r)
        assert [e.version for e in recorded] == ([1, 2] if asked else [1])
        assert [msgspec.json.decode(e.data) for e in recorded[1:]] == winners[stream_id]
