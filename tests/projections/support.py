"""What the projection tests share: the fold of the events, to compare the read model with,
order creation, waiting on a condition with a deadline, and real `orders` processes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from orders.create_order import OrderCreator
from orders.domain import lifecycle
from orders.domain.commands import (
    CancelRequest,
    DeliverRequest,
    LifecycleRequest,
    OrderCommand,
    OrderRequest,
    PayRequest,
    ShipRequest,
)
from orders.domain.events import (
    LIFECYCLE_EVENTS,
    OrderCreated,
    decode_event,
    encode_event,
    event_type,
)
from orders.domain.streams import order_stream_id
from orders.eventstore import START, EventStore, NewEvent
from projections.orders import CHECKPOINT, LIVE, Tables
from tests.processes.services import THIS_RELEASE, Release, service_environment

ORDER_REQUEST = msgspec.convert(
    {
        "products": [{"id": 7, "name": "book", "price": 1500, "quantity": 2}],
        "shipping_to": "1 Main St",
    },
    OrderRequest,
)

Row = tuple[str, str, str, Any, str, int, datetime, int, int, datetime]
"""An `orders` row without its key: owner, request id, status, products, shipping to, total,
created at, position, version, last change."""

# A few callers, the anonymous one among them, so that every projection test covers owners.
OWNERS = ("", "alice", "§3:b:c", "名前")


async def fold(store: EventStore) -> dict[uuid.UUID, Row]:
    """The `orders` table the events imply, computed in Python from `read_all` with the
    domain's own fold (what a command's answer shows)."""
    states: dict[uuid.UUID, lifecycle.OrderState] = {}
    positions: dict[uuid.UUID, int] = {}
    after = START
    while batch := await store.read_all(after, limit=1000):
        for recorded in batch:
            event = decode_event(recorded.data)
            if isinstance(event, OrderCreated):
                states[event.order_id] = lifecycle.start(event)
                positions[event.order_id] = recorded.position
            elif isinstance(event, LIFECYCLE_EVENTS):
                state = states[event.order_id]
                states[event.order_id] = lifecycle.evolve(state, event, recorded.version)
        after = batch[-1].checkpoint
    return {order_id: _row(state, positions[order_id]) for order_id, state in states.items()}


def _row(state: lifecycle.OrderState, position: int) -> Row:
    created = state.created
    return (
        created.owner,
        created.request_id,
        state.status,
        msgspec.to_builtins(created.products),
        created.shipping_to,
        created.total,
        created.created_at,
        position,
        state.version,
        state.updated_at,
    )


async def table(
    conn: asyncpg.Connection | asyncpg.Pool, name: str = "orders"
) -> dict[uuid.UUID, Row]:
    """An `orders` table (the live one by default), shaped as `fold` shapes the events."""
    columns = (
        "order_id, owner, request_id, status, products, shipping_to, total, created_at, position,"
        " version, coalesce(updated_at, created_at) AS updated_at"
    )
    records = await conn.fetch(f"SELECT {columns} FROM {name}")  # noqa: S608 (our own names)
    return {
        r["order_id"]: (
            r["owner"],
            r["request_id"],
            r["status"],
            msgspec.json.decode(r["products"]),
            r["shipping_to"],
            r["total"],
            r["created_at"],
            r["position"],
            r["version"],
            r["updated_at"],
        )
        for r in records
    }


_COUNTS = """
SELECT NULL AS owner, coalesce(sum(n), 0)::bigint AS n FROM {t.counts}
UNION ALL
SELECT '', coalesce(sum(n - named), 0)::bigint FROM {t.counts}
UNION ALL
SELECT owner, sum(n)::bigint FROM {t.owner_counts} GROUP BY owner
"""


async def counted(
    conn: asyncpg.Connection | asyncpg.Pool, tables: Tables = LIVE
) -> dict[str | None, int]:
    """The counts the projection keeps: each owner's (those above zero), and under None all."""
    rows = await conn.fetch(_COUNTS.format(t=tables))
    return {r["owner"]: r["n"] for r in rows if r["n"] or r["owner"] is None}


def counts_of(rows: dict[uuid.UUID, Row]) -> dict[str | None, int]:
    """The counts `counted` should find for these rows."""
    by_owner: collections.Counter[str | None] = collections.Counter(row[0] for row in rows.values())
    return {None: len(rows), **by_owner}


async def assert_read_model_is_the_fold(pool: asyncpg.Pool) -> dict[uuid.UUID, Row]:
    """Every order once, exactly as the events say, and counts that agree."""
    expected = await fold(EventStore(pool))
    assert await table(pool) == expected
    assert await counted(pool) == counts_of(expected)
    return expected


async def create_orders(creator: OrderCreator, n: int, *, concurrency: int = 8) -> list[str]:
    """Create `n` orders, `concurrency` at a time, for owners taken in turn from OWNERS; return
    their keys."""
    keys = [f"projection-{uuid.uuid4()}" for _ in range(n)]
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, key: str) -> None:
        async with gate:
            await creator.create(key, ORDER_REQUEST, OWNERS[i % len(OWNERS)])

    await asyncio.gather(*(one(i, key) for i, key in enumerate(keys)))
    return keys


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, *, within: float = 20.0
) -> None:
    """Wait until `check()` holds, re-checking every 20 ms; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.02)


async def leader(pool: asyncpg.Pool) -> int | None:
    """The process id of the `orders project` that holds the leader lock, if one does."""
    name: str | None = await pool.fetchval(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()"
        " AND a.application_name LIKE 'orders-project-%'"
    )
    return None if name is None else int(name.rsplit("-", 1)[1])


async def leads(pool: asyncpg.Pool, projector: OrdersProcess) -> bool:
    """Whether `projector` holds the leader lock (it has started and is projecting)."""
    return await leader(pool) == projector.process.pid


async def checkpoint_position(pool: asyncpg.Pool, name: str = CHECKPOINT) -> int:
    position: int | None = await pool.fetchval(
        "SELECT position FROM projection_checkpoints WHERE projection = $1", name
    )
    return position or 0


async def caught_up(pool: asyncpg.Pool, name: str = CHECKPOINT) -> bool:
    """Whether the checkpoint `name` (this release's projector's) covers every event."""
    lag: int = await pool.fetchval(
        "SELECT count(*) FROM events e LEFT JOIN projection_checkpoints c"
        " ON c.projection = $1"
        " WHERE c.projection IS NULL OR (e.tx_id, e.position) > (c.tx_id, c.position)",
        name,
    )
    return lag == 0


# The commands `move_orders` sends, by an order's index: every path through the lifecycle.
_PATHS: tuple[tuple[LifecycleRequest, ...], ...] = (
    (),
    (PayRequest(amount=3000, reference="psp"),),
    (PayRequest(amount=3000, reference="psp"), ShipRequest(carrier="DHL", tracking="1")),
    (
        PayRequest(amount=3000, reference="psp"),
        ShipRequest(carrier="DHL", tracking="1"),
        DeliverRequest(),
    ),
    (CancelRequest(reason="changed mind"),),
    (PayRequest(amount=3000, reference="psp"), CancelRequest()),
)


async def move_orders(store: EventStore, keys: list[str], *, then: str = "") -> int:
    """Move the orders of `keys` (as one `create_orders` call returned them) along the
    lifecycle, each by its index along one of every path there is, appending each event at its
    stream's next version as a command would (with `then`, the inline projection, or none);
    return how many events that appended."""
    appended = 0
    for i, key in enumerate(keys):
        stream_id = order_stream_id(OWNERS[i % len(OWNERS)], key)
        for step, request in enumerate(_PATHS[i % len(_PATHS)]):
            recorded = await store.read_stream(stream_id)
            state = lifecycle.fold([decode_event(e.data) for e in recorded])
            command = OrderCommand(request_id=f"move-{step}", by=state.owner, request=request)
            event = lifecycle.decide(state, command, now=datetime.now(UTC))
            await store.append(
                stream_id,
                [NewEvent(event_type(event), encode_event(event))],
                state.version,
                then=then,
            )
            appended += 1
    return appended


@dataclass
class OrdersProcess:
    """A real `orders` command (its own process group), its output in a file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(10)

    def wait(self, within: float = 60.0) -> int:
        return self.process.wait(within)


@contextlib.contextmanager
def orders_process(
    database_url: str,
    log_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    release: Release = THIS_RELEASE,
) -> Iterator[OrdersProcess]:
    """`orders <args>` (of `release`) against `database_url`, killed (SIGKILL) on leaving if
    still running."""
    log_path = log_dir / f"orders-{args[0]}-{uuid.uuid4().hex[:8]}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*release.command, *args],
            env=service_environment(database_url, {**release.env, **(env or {})}),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    running = OrdersProcess(process, log_path)
    try:
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(10)
