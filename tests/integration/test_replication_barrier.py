"""The replication barrier's statements, in every mode, on a server without standbys (where a
commit waits for nothing): a batch of replays still answers with the recorded event, and
`ensure_replicated` returns. That the barrier waits for a standby, and that without it a
replay acknowledges what a failover loses, is tests/failover/test_partition.py's to show, on
a real standby."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from orders.eventstore import EventStore, NewEvent
from orders.eventstore.store import BarrierMode

MODES: list[BarrierMode] = ["always", "auto", "off"]


@pytest.mark.parametrize("mode", MODES)
async def test_replays_in_a_batch_answer_with_the_recorded_event_in_every_mode(
    pool: asyncpg.Pool, mode: BarrierMode
) -> None:
    store = EventStore(pool, replication_barrier=mode)
    first, second = (f"barrier-{uuid.uuid4()}" for _ in range(2))
    [created] = await store.start_streams([(first, NewEvent("OrderCreated", b'{"n": 1}'))])

    starts = await store.start_streams(
        [
            (first, NewEvent("OrderCreated", b'{"n": 2}')),
            (second, NewEvent("OrderCreated", b'{"n": 3}')),
        ]
    )

    assert [s.started for s in starts] == [False, True]
    assert starts[0].first == created.first


@pytest.mark.parametrize("mode", MODES)
async def test_ensure_replicated_returns_on_a_server_without_standbys(
    pool: asyncpg.Pool, mode: BarrierMode
) -> None:
    await EventStore(pool, replication_barrier=mode).ensure_replicated()
