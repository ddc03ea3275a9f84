"""Properties of the PostgreSQL event store under real concurrency, with hypothesis choosing
who races whom and in which order transactions finish."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import msgspec
import pytest
import pytest_asyncio
from asyncpg.transaction import Transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from orders.eventstore import (
    ANY,
    NO_STREAM,
    EventStore,
    ExpectedVersion,
    NewEvent,
    Position,
    RecordedEvent,
    StreamAlreadyExists,
    WrongExpectedVersion,
)
from orders.eventstore.pool import connect, create_pool

REPLICAS = 2
STREAMS = 2
WAVES = 3
WRITERS = 3
DRAIN_DEADLINE_SECONDS = 10.0

# Every example runs against real PostgreSQL; these keep the whole file well under a minute.
PROPERTY_SETTINGS = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Any text jsonb can hold: valid UTF-8 without NUL.
json_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6)


# -- (a) racing appenders ---------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    wave: int
    stream: int
    expected: ExpectedVersion
    notes: tuple[str, ...]
    replica: int

    def events(self, attempt: int) -> list[NewEvent]:
        return [
            NewEvent("Raced", msgspec.json.encode({"attempt": attempt, "i": i, "note": note}))
            for i, note in enumerate(self.notes)
        ]


def first_version(expected: ExpectedVersion) -> int:
    """The version a successful append with a definite expectation starts at."""
    return expected + 1 if isinstance(expected, int) else 1


attempts = st.lists(
    st.builds(
        Attempt,
        wave=st.integers(0, WAVES - 1),
        stream=st.integers(0, STREAMS - 1),
        expected=st.one_of(st.just(NO_STREAM), st.just(ANY), st.integers(0, 3)),
        notes=st.lists(json_text, min_size=1, max_size=2).map(tuple),
        replica=st.integers(0, REPLICAS - 1),
    ),
    min_size=2,
    max_size=24,
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def replicas(database_url: str) -> AsyncIterator[list[EventStore]]:
    """Stores over separate pools, as separate service replicas would have."""
    pools = [await create_pool(database_url, size=4) for _ in range(REPLICAS)]
    yield [EventStore(pool) for pool in pools]
    for pool in pools:
        await pool.close()


@PROPERTY_SETTINGS
@given(attempts=attempts)
async def test_racing_appends_keep_every_stream_contiguous_and_every_success_durable(
    replicas: list[EventStore], pool: asyncpg.Pool, attempts: list[Attempt]
) -> None:
    prefix = f"race-{uuid.uuid4()}"
    stream_ids = [f"{prefix}-{n}" for n in range(STREAMS)]
    outcomes: list[list[RecordedEvent] | Exception] = [[] for _ in attempts]

    async def run(index: int) -> None:
        attempt = attempts[index]
        store = replicas[attempt.replica]
        stream_id = stream_ids[attempt.stream]
        try:
            outcomes[index] = await store.append(stream_id, attempt.events(index), attempt.expected)
        except Exception as exc:  # every outcome is judged below, including the unexpected
            outcomes[index] = exc

    for wave in range(WAVES):
        await asyncio.gather(*(run(i) for i, a in enumerate(attempts) if a.wave == wave))

    duplicates = await pool.fetch(
        "SELECT stream_id, version FROM events WHERE stream_id = ANY($1::text[])"
        " GROUP BY stream_id, version HAVING count(*) > 1",
        stream_ids,
    )
    assert duplicates == [], "two events share a (stream, version)"

    stored = {s: await replicas[0].read_stream(s) for s in stream_ids}
    for stream_id, events in stored.items():
        assert [e.version for e in events] == list(range(1, len(events) + 1)), stream_id

    appended: Counter[str] = Counter()
    for index, (attempt, outcome) in enumerate(zip(attempts, outcomes, strict=True)):
        stream_id = stream_ids[attempt.stream]
        if isinstance(outcome, Exception):
            loser = StreamAlreadyExists if attempt.expected == NO_STREAM else WrongExpectedVersion
            assert type(outcome) is loser, f"{attempt} failed with {outcome!r}"
            if isinstance(outcome, WrongExpectedVersion):
                # Read after the conflict: the winner's version, never a guess.
                assert 0 <= outcome.actual <= len(stored[stream_id])
            event("an append lost")
            continue
        versions = [e.version for e in outcome]
        assert versions == list(range(versions[0], versions[0] + len(attempt.notes)))
        assert attempt.expected == ANY or versions[0] == first_version(attempt.expected)
        assert [msgspec.json.decode(e.data) for e in outcome] == [
            msgspec.json.decode(e.data) for e in attempt.events(index)
        ]
        readable = stored[stream_id][versions[0] - 1 : versions[-1]]
        assert readable == outcome, "a reported success is not what the stream holds"
        appended[stream_id] += len(outcome)
        if isinstance(attempt.expected, int) and attempt.expected > 0:
            event("an append at an exact version won")

    for stream_id, events in stored.items():
        assert len(events) == appended[stream_id], "an event was stored without a success"
    for attempt in attempts:
        if attempt.expected == NO_STREAM:
            assert stored[stream_ids[attempt.stream]], "a no-stream append lost to nobody"


# -- (b) gap-safe reading while transactions commit out of position order ----------------------


@dataclass
class Writer:
    """A raw connection that inserts events in a transaction it keeps open until told."""

    conn: asyncpg.Connection
    transaction: Transaction | None = None
    held: list[int] = field(default_factory=list)


@dataclass
class GapScenario:
    store: EventStore
    writers: list[Writer]
    checkpoint: Position
    prefix: str = field(default_factory=lambda: f"gap-{uuid.uuid4()}")
    committed: set[int] = field(default_factory=set)
    aborted: set[int] = field(default_factory=set)
    seen: list[int] = field(default_factory=list)
    tx_ids: set[int] = field(default_factory=set)
    streams: int = 0

    def _next_stream(self) -> str:
        self.streams += 1
        return f"{self.prefix}-{self.streams}"

    async def hold(self, writer: Writer) -> None:
        if writer.transaction is None:
            writer.transaction = writer.conn.transaction()
            await writer.transaction.start()
        row = await writer.conn.fetchrow(
            "INSERT INTO events (stream_id, version, event_type, data)"
            " VALUES ($1, 1, 'Held', $2) RETURNING position, tx_id",
            self._next_stream(),
            b'{"held": true}',
        )
        assert row is not None
        writer.held.append(row["position"])
        self.tx_ids.add(row["tx_id"])

    async def finish(self, writer: Writer, *, commit: bool) -> None:
        if writer.transaction is None:
            return
        if commit:
            await writer.transaction.commit()
            self.committed.update(writer.held)
        else:
            await writer.transaction.rollback()
            self.aborted.update(writer.held)
        writer.transaction = None
        writer.held.clear()

    async def append(self, count: int) -> None:
        events = [NewEvent("Appended", b'{"appended": true}') for _ in range(count)]
        recorded = await self.store.append(self._next_stream(), events, NO_STREAM)
        if any(held < recorded[0].position for w in self.writers for held in w.held):
            event("an append committed past a held, earlier position")
        self.committed.update(e.position for e in recorded)
        self.tx_ids.update(e.tx_id for e in recorded)

    async def poll(self, limit: int) -> list[int]:
        batch = await self.store.read_all(after=self.checkpoint, limit=limit)
        if batch:
            self.checkpoint = batch[-1].checkpoint
        self.seen.extend(e.position for e in batch)
        return [e.position for e in batch]

    async def drain(self, pool: asyncpg.Pool) -> None:
        """Poll until a read has happened after every transaction of ours had finished, as far
        as the server's snapshot says (an unrelated transaction may briefly hold it back)."""
        deadline = time.monotonic() + DRAIN_DEADLINE_SECONDS
        newest = max(self.tx_ids, default=0)
        while time.monotonic() < deadline:
            settled = await pool.fetchval(
                "SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::xid8", newest
            )
            if not await self.poll(limit=1000) and settled:
                return
        raise AssertionError("the reader never caught up")


Step = tuple[str, int]

steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["hold", "commit", "abort"]), st.integers(0, WRITERS - 1)),
        st.tuples(st.just("append"), st.integers(1, 2)),
        st.tuples(st.just("poll"), st.integers(1, 3)),
    ),
    max_size=30,
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def writers(database_url: str) -> AsyncIterator[list[Writer]]:
    conns = [await connect(database_url) for _ in range(WRITERS)]
    yield [Writer(conn) for conn in conns]
    for conn in conns:
        await conn.close()


@PROPERTY_SETTINGS
@given(
    steps=steps,
    finish_order=st.permutations(range(WRITERS)),
    finish_commits=st.lists(st.booleans(), min_size=WRITERS, max_size=WRITERS),
)
async def test_a_polling_reader_sees_every_committed_event_once_whatever_the_commit_order(
    store: EventStore,
    pool: asyncpg.Pool,
    writers: list[Writer],
    steps: list[Step],
    finish_order: list[int],
    finish_commits: list[bool],
) -> None:
    scenario = GapScenario(store, writers, checkpoint=await store.head())
    try:
        for action, arg in steps:
            if action == "hold":
                await scenario.hold(writers[arg])
            elif action in ("commit", "abort"):
                await scenario.finish(writers[arg], commit=action == "commit")
            elif action == "append":
                await scenario.append(arg)
            else:
                await scenario.poll(arg)
        for index in finish_order:
            await scenario.finish(writers[index], commit=finish_commits[index])
    finally:
        for writer in writers:
            await scenario.finish(writer, commit=False)

    await scenario.drain(pool)

    assert not scenario.aborted & set(scenario.seen), "an aborted event was read"
    assert len(scenario.seen) == len(set(scenario.seen)), "an event was read twice"
    assert set(scenario.seen) == scenario.committed, "a committed event was skipped"


# -- (c) append-only, even for a superuser who switches triggers off the usual way -------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET data = '{}'::jsonb",
        "DELETE FROM events",
        "TRUNCATE events",
    ],
)
async def test_events_stay_append_only_for_a_superuser_in_replica_mode(
    store: EventStore, pool: asyncpg.Pool, statement: str
) -> None:
    await store.append(f"replica-{uuid.uuid4()}", [NewEvent("Kept", b"{}")], NO_STREAM)
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            pytest.skip("only a superuser can set session_replication_role")
        count = await conn.fetchval("SELECT count(*) FROM events")
        # Restore and replication tools run in this role, in which ordinary triggers are off.
        await conn.execute("SET session_replication_role = replica")
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        finally:
            await conn.execute("RESET session_replication_role")
        assert await conn.fetchval("SELECT count(*) FROM events") == count
