"""Read-your-writes with the async projection: a read reflects every write acknowledged before
it began, waiting for the projector up to ORDERS_READ_WAIT_SECONDS, and answers 503 with
Retry-After rather than stale data when the projector does not catch up in time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest_asyncio
from litestar.testing import AsyncTestClient

from orders.api.app import create_app
from orders.settings import Settings
from tests.api.helpers import (
    ORDERS,
    PROBLEM_JSON,
    SHIPMENT,
    as_read,
    new_key,
    order_body,
    payment,
    post_order,
    send_command,
)
from tests.auth.tokens import bearer, jwt_settings
from tests.projections.support import (
    OrdersProcess,
    caught_up,
    eventually,
    leads,
    orders_process,
)

READ_WAIT_SECONDS = 0.5


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(pool_size=4, projection_mode="async", read_wait_seconds=READ_WAIT_SECONDS)
    async with AsyncTestClient(create_app(settings, database_url)) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def projector(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> AsyncIterator[OrdersProcess]:
    """An `orders project` process (the test client runs the app on this thread's loop and
    blocks it while a request waits, so the worker cannot share it), once it leads: a
    checkpoint that covers every event may be the previous test's projector's, and a read
    waits only `READ_WAIT_SECONDS` for this one to start."""
    with orders_process(database_url, tmp_path, "project", "--metrics-port", "0") as process:
        await eventually(lambda: leads(pool, process), f"the projector leads\n{process.log_text()}")
        yield process


async def test_with_the_projector_stopped_a_read_waits_then_answers_503_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    created = await post_order(client, order_body(), new_key())
    assert created.status_code == 201

    started = time.monotonic()
    for path in (created.headers["Location"], f"{ORDERS}/count", f"{ORDERS}?limit=5"):
        response = await client.get(path)

        assert response.status_code == 503, path
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["retry-after"] == "1"
        assert response.json()["type"] == "/problems/service-unavailable"
    assert time.monotonic() - started >= 3 * READ_WAIT_SECONDS, "the reads did not wait"


async def test_with_the_projector_stopped_a_command_or_history_waits_then_answers_503(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    created = await post_order(client, order_body(), new_key())
    order = created.headers["Location"]
    events_before = await pool.fetchval("SELECT count(*) FROM events")

    for response in (
        await send_command(client, created.json()["order_id"], "cancel", {}),
        await client.get(f"{order}/history"),
    ):
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["retry-after"] == "1"
        assert response.json()["type"] == "/problems/service-unavailable"
    assert await pool.fetchval("SELECT count(*) FROM events") == events_before, "recorded"


async def test_an_eventual_read_answers_at_once_without_the_unprojected_write(
    client: httpx.AsyncClient,
) -> None:
    created = await post_order(client, order_body(), new_key())

    response = await client.get(created.headers["Location"], headers={"Consistency": "eventual"})

    assert response.status_code == 404


async def test_an_unknown_consistency_is_a_400_problem(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{ORDERS}/count", headers={"Consistency": "sometimes"})

    assert response.status_code == 400
    assert response.json()["type"] == "/problems/invalid-parameter"


async def test_with_the_projector_running_a_read_right_after_a_201_sees_the_order(
    client: httpx.AsyncClient, pool: asyncpg.Pool, projector: OrdersProcess
) -> None:
    await eventually(lambda: caught_up(pool), f"the projector started\n{projector.log_text()}")
    for _ in range(20):
        created = await post_order(client, order_body(), new_key())
        assert created.status_code == 201

        read = await client.get(created.headers["Location"])

        assert read.status_code == 200, read.text
        assert read.json() == as_read(created.json())
    events: int = await pool.fetchval("SELECT count(*) FROM events")
    assert (await client.get(f"{ORDERS}/count")).json() == {"count": events}


async def test_with_the_projector_running_a_read_right_after_a_command_sees_it(
    client: httpx.AsyncClient, pool: asyncpg.Pool, projector: OrdersProcess
) -> None:
    await eventually(lambda: caught_up(pool), f"the projector started\n{projector.log_text()}")
    created = await post_order(client, order_body(), new_key())
    order_id = created.json()["order_id"]
    for action, body in [("pay", payment()), ("ship", SHIPMENT), ("deliver", {})]:
        answer = await send_command(client, order_id, action, body)
        assert answer.status_code == 200, answer.text

        read = await client.get(created.headers["Location"])

        assert read.content == answer.content
    paid = await client.get(ORDERS, params={"status": "delivered", "limit": 500})
    assert order_id in {item["order_id"] for item in paid.json()["items"]}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def jwt_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    # This test is about whose writes a read sees, not about the wait: give it room.
    settings = jwt_settings(projection_mode="async", read_wait_seconds=10)
    async with AsyncTestClient(create_app(settings, database_url)) as client:
        yield client


async def test_with_the_projector_running_a_caller_reads_its_own_writes_only(
    jwt_client: httpx.AsyncClient, pool: asyncpg.Pool, projector: OrdersProcess
) -> None:
    await eventually(lambda: caught_up(pool), f"the projector started\n{projector.log_text()}")
    alice, bob = bearer(f"alice-{new_key()}"), bearer(f"bob-{new_key()}")
    for n in range(1, 6):
        key = new_key()
        created = await post_order(jwt_client, order_body(), key, headers=alice)
        await post_order(jwt_client, order_body(), key, headers=bob)

        read = await jwt_client.get(created.headers["Location"], headers=alice)
        count = await jwt_client.get(f"{ORDERS}/count", headers=alice)
        not_bobs = await jwt_client.get(created.headers["Location"], headers=bob)

        assert read.status_code == 200, read.text
        assert read.json() == as_read(created.json())
        assert count.json() == {"count": n}
        assert not_bobs.status_code == 404
