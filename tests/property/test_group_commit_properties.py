"""Group commit under real concurrency, with hypothesis choosing the batches: repeated keys,
valid, rejected and mismatched commands, and two replicas (two pools) racing the same keys."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import msgspec
import pytest_asyncio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import projections.orders
from orders.create_order import KeyReused, OrderCreator, Outcome
from orders.domain.commands import CreateOrder, OrderRequest, ProductLine
from orders.domain.events import OrderCreated, decode_event, encode_event
from orders.domain.fingerprint import fingerprint
from orders.domain.streams import order_stream_id
from orders.eventstore import Batch, EventStore, NewEvent, StreamStart
from orders.eventstore.pool import create_pool

REPLICAS = 2
KEYS = 4
OWNERS = ("", "alice", "名前")

GROUP_SETTINGS = settings(
    max_examples=150,
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


# -- (a) batch statements racing each other on shared streams ----------------------------------

store_batches = st.lists(
    st.tuples(
        st.integers(0, REPLICAS - 1),
        st.lists(st.integers(0, KEYS - 1), min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=6,
)


@GROUP_SETTINGS
@given(batches=store_batches)
async def test_racing_batches_start_each_stream_once_and_agree_on_its_first_event(
    pools: list[asyncpg.Pool], batches: list[tuple[int, list[int]]]
) -> None:
    prefix = f"batch-{uuid.uuid4()}"
    stores = [EventStore(pool) for pool in pools]

    def start(batch: int, slot: int, key: int) -> tuple[str, NewEvent]:
        data = msgspec.json.encode({"batch": batch, "slot": slot})
        return f"{prefix}-{key}", NewEvent("Started", data)

    requests = [
        [start(b, slot, key) for slot, key in enumerate(keys)]
        for b, (_, keys) in enumerate(batches)
    ]
    # Every batch at once: shared streams in different orders, on different connections.
    answers: list[list[StreamStart]] = await asyncio.gather(
        *(stores[batch[0]].start_streams(r) for batch, r in zip(batches, requests, strict=True))
    )

    by_stream: dict[str, list[tuple[NewEvent, StreamStart]]] = defaultdict(list)
    for batch_requests, batch_answers in zip(requests, answers, strict=True):
        assert len(batch_answers) == len(batch_requests)
        for (stream_id, sent), answer in zip(batch_requests, batch_answers, strict=True):
            assert answer.first.stream_id == stream_id
            by_stream[stream_id].append((sent, answer))
    for stream_id, starts in by_stream.items():
        stored = await stores[0].read_stream(stream_id)
        assert len(stored) == 1, "a stream was started more than once"
        assert all(answer.first == stored[0] for _, answer in starts), "answers disagree"
        winners = [sent for sent, answer in starts if answer.started]
        assert len(winners) == 1, f"{len(winners)} starts claim {stream_id}"
        assert msgspec.json.decode(winners[0].data) == msgspec.json.decode(stored[0].data), (
            "the winner's event is not the one stored"
        )
    if any(len(set(keys)) < len(keys) for _, keys in batches):
        event("a batch named a stream twice")


# -- (b) creates from two replicas: repeated keys, rejections, key reuse ----------------------

PAYLOADS = (
    OrderRequest(products=[ProductLine(id=1, price=1500, quantity=2)], shipping_to="1 Main St"),
    OrderRequest(products=[ProductLine(id=2, price=700)], shipping_to="2 High St"),
    OrderRequest(products=[], shipping_to="3 Low St"),  # rejected: no products
)


@dataclass(frozen=True)
class Create:
    wave: int
    replica: int
    owner: str
    key: int
    payload: int


creates = st.lists(
    st.builds(
        Create,
        wave=st.integers(0, 1),
        replica=st.integers(0, REPLICAS - 1),
        owner=st.sampled_from(OWNERS),
        key=st.integers(0, KEYS - 1),
        payload=st.integers(0, len(PAYLOADS) - 1),
    ),
    min_size=1,
    max_size=24,
)


@GROUP_SETTINGS
@given(plan=creates)
async def test_creates_in_batches_answer_exactly_as_creates_one_by_one(
    pools: list[asyncpg.Pool], plan: list[Create]
) -> None:
    prefix = f"gc-{uuid.uuid4()}-"
    batches: list[Batch] = []
    # A new creator per example: nothing recorded in memory from an earlier one.
    creators = [
        OrderCreator(
            EventStore(pool), inline_projection=projections.orders.INLINE, on_batch=batches.append
        )
        for pool in pools
    ]
    outcomes: list[Outcome | KeyReused] = [KeyReused("unset")] * len(plan)

    async def create(index: int) -> None:
        c = plan[index]
        try:
            outcomes[index] = await creators[c.replica].create(
                prefix + str(c.key), PAYLOADS[c.payload], c.owner
            )
        except KeyReused as exc:
            outcomes[index] = exc

    for wave in (0, 1):
        await asyncio.gather(*(create(i) for i, c in enumerate(plan) if c.wave == wave))

    store = EventStore(pools[0])
    by_stream: dict[str, list[int]] = defaultdict(list)
    for index, c in enumerate(plan):
        by_stream[order_stream_id(c.owner, prefix + str(c.key))].append(index)
    created: set[tuple[str, str]] = set()
    for stream_id, indexes in by_stream.items():
        stored = await store.read_stream(stream_id)
        assert len(stored) == 1, "one key, more than one outcome"
        recorded = decode_event(stored[0].data)
        fresh = 0
        for index in indexes:
            c, outcome = plan[index], outcomes[index]
            command = CreateOrder.from_request(prefix + str(c.key), PAYLOADS[c.payload], c.owner)
            if fingerprint(command) != recorded.fingerprint:
                assert isinstance(outcome, KeyReused), "another payload's outcome was replayed"
                continue
            assert isinstance(outcome, Outcome), f"the recorded payload was refused: {outcome}"
            assert encode_event(outcome.event) == encode_event(recorded), "answers differ"
            fresh += not outcome.replayed
        assert fresh == 1, f"{fresh} requests claim to have created {stream_id}"
        if isinstance(recorded, OrderCreated):
            created.add((recorded.owner, recorded.request_id))

    projected = await pools[0].fetch(
        "SELECT owner, request_id FROM orders WHERE starts_with(request_id, $1)", prefix
    )
    assert sorted((r["owner"], r["request_id"]) for r in projected) == sorted(created)
    if any(batch.size > 1 for batch in batches):
        event("creates shared a statement")
