"""`ORDERS_AUTH=gateway`: the caller is the header a trusted gateway sets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio

from orders.api.app import create_app
from orders.settings import Settings
from tests.api.conftest import running
from tests.api.helpers import (
    ORDERS,
    as_read,
    assert_problem,
    assert_replays,
    new_key,
    order_body,
    post_order,
    row_counts,
)
from tests.support.asgi import asgi_transport


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(pool_size=4, auth="gateway", auth_header="X-Auth-User"), database_url)
    transport = asgi_transport(app)
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client


def user(name: str) -> dict[str, str]:
    return {"X-Auth-User": name}


async def test_the_gateways_header_names_the_caller(gateway: httpx.AsyncClient) -> None:
    key = new_key()
    alice = await post_order(gateway, order_body(), key, headers=user("alice@example.com"))
    bob = await post_order(gateway, order_body(), key, headers=user("bob@example.com"))
    again = await post_order(gateway, order_body(), key, headers=user("alice@example.com"))

    assert alice.status_code == bob.status_code == 201
    assert alice.json()["order_id"] != bob.json()["order_id"]
    assert_replays(alice, again)
    assert_problem(
        await gateway.get(alice.headers["Location"], headers=user("bob@example.com")),
        404,
        "order-not-found",
    )


async def test_the_admin_role_header_reads_everything(gateway: httpx.AsyncClient) -> None:
    created = await post_order(gateway, order_body(), new_key(), headers=user("carol"))
    admin = {**user("ops"), "X-User-Roles": "orders:read, orders:admin"}

    assert (await gateway.get(created.headers["Location"], headers=admin)).json() == as_read(
        created.json()
    )


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("X-Auth-User", "")],
        [("X-Auth-User", "   ")],
        [("X-Auth-User", "alice"), ("X-Auth-User", "bob")],
        [("X-Auth-User", "a" * 256)],
        [("X-Auth-User", "alice\tbob")],
    ],
    ids=["missing", "empty", "blank", "twice", "too long", "control character"],
)
async def test_without_one_valid_caller_header_nothing_is_recorded(
    gateway: httpx.AsyncClient, db: asyncpg.Pool, headers: list[tuple[str, str]]
) -> None:
    before = await row_counts(db)
    sent = [("Content-Type", "application/json"), ("Idempotency-Key", new_key()), *headers]

    response = await gateway.post(
        ORDERS, content=b'{"products": [], "shipping_to": "x"}', headers=sent
    )

    assert_problem(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"] == 'Gateway realm="orders", header="X-Auth-User"'
    assert await row_counts(db) == before
