"""Lifecycle commands racing on one order over two `orders serve` processes, in inline and in
async projection mode: the event store ends with exactly one event per version, each a legal
transition from the status before it (decided on that status, not on a stale read), and racers
with one key all get one identical answer. A retry answered by a process that never saw the
first answer is byte-identical to it."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import httpx
import msgspec
import pytest
import pytest_asyncio

from orders.domain.streams import order_stream_id
from tests.processes.clients import Answer, Attempts, command_order, create_order, order_payload
from tests.processes.services import served
from tests.projections.support import eventually, leads, orders_process
from tests.support.databases import DatabaseFactory
from tests.support.lifecycle_model import ACTION_OF, TRANSITIONS, allowed

pytestmark = pytest.mark.slow

TOTAL: Final = 1500  # order_payload()'s
BODIES: Final[dict[str, dict[str, Any]]] = {
    "pay": {"amount": TOTAL, "reference": "psp-race"},
    "ship": {"carrier": "DHL", "tracking": "race"},
    "deliver": {},
    "cancel": {"reason": "raced"},
}
ORDERS_RACED: Final = 12
# Per order: both paths out of `created` twice over, and the later steps, all at once.
RACERS: Final = ("pay", "pay", "cancel", "cancel", "ship", "deliver")
SAME_KEY_RACERS: Final = 16


@dataclass(frozen=True)
class Deployment:
    """Two serve processes on one database (and, in async mode, a projector)."""

    urls: list[str]
    database_url: str


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["inline", "async"])
async def deployment(
    request: pytest.FixtureRequest,
    databases: DatabaseFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Deployment]:
    mode: str = request.param
    database_url = await databases.create()
    logs = tmp_path_factory.mktemp(f"logs-{mode}")
    env = {"ORDERS_PROJECTION_MODE": mode}
    async with (
        served(database_url, logs, env=env) as first,
        served(database_url, logs, env=env) as second,
    ):
        deployment = Deployment([first.base_url, second.base_url], database_url)
        if mode == "inline":
            yield deployment
            return
        with orders_process(database_url, logs, "project", "--metrics-port", "0") as projector:
            async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
                await eventually(lambda: leads(pool, projector), "the projector leads")
            yield deployment


def new_key(action: str) -> str:
    return f"{action}-{uuid.uuid4()}"


def http_client() -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    return httpx.AsyncClient(limits=limits, timeout=30.0)


async def created_order(client: httpx.AsyncClient, urls: Sequence[str]) -> tuple[str, str]:
    """(order id, the key that created it: the stream's name for the anonymous caller)."""
    key = f"race-{uuid.uuid4()}"
    created = await create_order(client, urls, key, order_payload(), retry_dropped=False)
    assert created.answer.status == 201, created.answer.body
    return created.answer.order_id, key


class StoredEvent(msgspec.Struct, frozen=True):
    version: int
    type: str
    data: dict[str, Any]


async def stored_stream(database_url: str, stream_id: str) -> list[StoredEvent]:
    """The stream's rows in the event store, in version order."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT version, event_type, data FROM events WHERE stream_id = $1 ORDER BY version",
            stream_id,
        )
    finally:
        await conn.close()
    return [
        StoredEvent(r["version"], r["event_type"], msgspec.json.decode(r["data"])) for r in rows
    ]


def assert_legal_history(events: list[StoredEvent]) -> list[str]:
    """Versions 1..n, an OrderCreated first, then each event a legal transition from the status
    the events before it made, with a refund owed exactly when the order was paid; returns
    the statuses the order went through."""
    assert [event.version for event in events] == list(range(1, len(events) + 1))
    assert events[0].type == "OrderCreated"
    statuses = ["created"]
    for event in events[1:]:
        transition = (statuses[-1], ACTION_OF[event.type])
        assert transition in TRANSITIONS, f"{event.type} at version {event.version} from {statuses}"
        if event.type == "OrderCancelled":
            assert event.data["refund_owed"] == (TOTAL if statuses[-1] == "paid" else 0)
        statuses.append(TRANSITIONS[transition])
    keys = [event.data["request_id"] for event in events[1:]]
    assert len(keys) == len(set(keys)), "one key recorded two transitions"
    return statuses


def assert_answers_match_the_stream(
    racers: Sequence[tuple[str, str]], attempts: Sequence[Attempts], events: list[StoredEvent]
) -> None:
    """Every racer (action, key) that got 200 made exactly the event at the version it was told;
    every other got 409 invalid-transition for a status the order really was in, from which
    its action is not allowed; no other answer."""
    statuses = assert_legal_history(events)
    by_key = {event.data["request_id"]: event for event in events[1:]}
    applied = 0
    for (action, key), attempt in zip(racers, attempts, strict=True):
        answer = attempt.answer
        if answer.status == 200:
            applied += 1
            version = json_of(answer)["version"]
            assert answer.headers["ETag"] == f'"{version}"'
            assert answer.headers["Idempotent-Replayed"] == "false"
            assert by_key[key].version == version
            assert ACTION_OF[by_key[key].type] == action
            continue
        assert answer.status == 409, answer.body
        problem = json_of(answer)
        assert problem["type"] == "/problems/invalid-transition"
        assert problem["order_status"] in statuses
        assert action not in allowed(problem["order_status"])
        assert key not in by_key
    assert applied == len(events) - 1


def json_of(answer: Answer) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(answer.body)
    return decoded


async def race(
    client: httpx.AsyncClient, urls: Sequence[str], order_id: str, racers: Sequence[tuple[str, str]]
) -> list[Attempts]:
    return await asyncio.gather(
        *(
            command_order(client, [urls[i % 2]], order_id, action, key, BODIES[action])
            for i, (action, key) in enumerate(racers)
        )
    )


async def test_racing_commands_with_different_keys_make_one_legal_event_per_version(
    deployment: Deployment,
) -> None:
    async with http_client() as client:
        orders = [await created_order(client, deployment.urls) for _ in range(ORDERS_RACED)]
        racers = {
            order_id: [
                (action, f"{action}-{uuid.uuid4()}")
                for action in random.sample(RACERS, len(RACERS))
            ]
            for order_id, _ in orders
        }
        results = await asyncio.gather(
            *(race(client, deployment.urls, order_id, racers[order_id]) for order_id, _ in orders)
        )

    finals: Counter[str] = Counter()
    for (order_id, stream_key), attempts in zip(orders, results, strict=True):
        events = await stored_stream(deployment.database_url, order_stream_id("", stream_key))
        assert_answers_match_the_stream(racers[order_id], attempts, events)
        finals[assert_legal_history(events)[-1]] += 1
    print(f"\nfinal statuses of {ORDERS_RACED} raced orders: {dict(finals)}")


async def test_pay_racing_cancel_ends_cancelled_with_the_refund_the_winner_left_owed(
    deployment: Deployment,
) -> None:
    async with http_client() as client:
        orders = [await created_order(client, deployment.urls) for _ in range(ORDERS_RACED)]
        racers = {
            order_id: [("pay", new_key("pay")), ("cancel", new_key("cancel"))]
            for order_id, _ in orders
        }
        results = await asyncio.gather(
            *(race(client, deployment.urls, order_id, racers[order_id]) for order_id, _ in orders)
        )

    winners: Counter[str] = Counter()
    for (order_id, stream_key), attempts in zip(orders, results, strict=True):
        events = await stored_stream(deployment.database_url, order_stream_id("", stream_key))
        assert_answers_match_the_stream(racers[order_id], attempts, events)
        assert events[-1].type == "OrderCancelled"
        winners["pay first" if len(events) == 3 else "cancel first"] += 1
    print(f"\npay vs cancel on {ORDERS_RACED} orders: {dict(winners)}")


async def test_two_cancels_with_different_keys_make_one_cancellation(
    deployment: Deployment,
) -> None:
    async with http_client() as client:
        orders = [await created_order(client, deployment.urls) for _ in range(ORDERS_RACED)]
        racers = {
            order_id: [("cancel", new_key("cancel")) for _ in range(2)] for order_id, _ in orders
        }
        results = await asyncio.gather(
            *(race(client, deployment.urls, order_id, racers[order_id]) for order_id, _ in orders)
        )

    for (order_id, stream_key), attempts in zip(orders, results, strict=True):
        events = await stored_stream(deployment.database_url, order_stream_id("", stream_key))
        assert_answers_match_the_stream(racers[order_id], attempts, events)
        assert [event.type for event in events] == ["OrderCreated", "OrderCancelled"]
        assert sorted(attempt.answer.status for attempt in attempts) == [200, 409]


@pytest.mark.parametrize("action", ["pay", "cancel"])
async def test_racers_with_one_key_all_get_one_identical_answer(
    deployment: Deployment, action: str
) -> None:
    """One key sent many times at once over both processes, while a command with another key
    races it (a cancel against the pays, a pay against the cancels): whichever wins, every
    racer with the key gets the same status, body and ETag, and the key records at most one
    event."""
    other = "cancel" if action == "pay" else "pay"
    async with http_client() as client:
        order_id, stream_key = await created_order(client, deployment.urls)
        key = new_key(action)
        racers = [(action, key)] * SAME_KEY_RACERS + [(other, new_key(other))]
        attempts = await race(client, deployment.urls, order_id, racers)

    same_key = attempts[:SAME_KEY_RACERS]
    answers = {(a.answer.status, a.answer.body, a.answer.headers.get("ETag")) for a in same_key}
    assert len(answers) == 1, answers
    events = await stored_stream(deployment.database_url, order_stream_id("", stream_key))
    assert_legal_history(events)
    recorded = [event for event in events if event.data.get("request_id") == key]
    status = same_key[0].answer.status
    replays = [a.answer.headers.get("Idempotent-Replayed") for a in same_key]
    if status == 200:
        assert len(recorded) == 1
        assert replays.count("false") == 1
        assert json_of(same_key[0].answer)["version"] == recorded[0].version
    else:
        assert status == 409 and not recorded
    print(f"\n{SAME_KEY_RACERS} x {action} with one key against one {other}: all {status}")


async def test_a_retry_answered_by_another_process_is_the_first_answer_byte_for_byte(
    deployment: Deployment,
) -> None:
    """The first answer from one process, the retry from the other, which never saw it (each
    process remembers only the answers it gave), after the order has moved on."""
    first, second = deployment.urls
    async with http_client() as client:
        order_id, _ = await created_order(client, [first])
        key = new_key("pay")
        paid = await command_order(client, [first], order_id, "pay", key, BODIES["pay"])
        shipped = await command_order(
            client, [second], order_id, "ship", new_key("ship"), BODIES["ship"]
        )
        retried = await command_order(client, [second], order_id, "pay", key, BODIES["pay"])
        again = await command_order(client, [first], order_id, "pay", key, BODIES["pay"])

    assert paid.answer.status == shipped.answer.status == 200
    assert paid.answer.headers["Idempotent-Replayed"] == "false"
    for replay in (retried.answer, again.answer):
        assert replay.status == 200
        assert replay.body == paid.answer.body
        assert replay.headers["ETag"] == paid.answer.headers["ETag"] == '"2"'
        assert replay.headers["Idempotent-Replayed"] == "true"
