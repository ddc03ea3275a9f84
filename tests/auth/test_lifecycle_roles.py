"""Who may do what to an order: the owner may cancel it, the fulfilment role may pay, ship,
deliver and cancel any order, admins everything; anyone else does not see the order at all."""

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
    SHIPMENT,
    assert_problem,
    new_key,
    new_order,
    payment,
    row_counts,
    send_command,
)
from tests.support.asgi import asgi_transport

FULFILMENT_ROLE = "shop:fulfilment"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(pool_size=4, auth="gateway", fulfilment_role=FULFILMENT_ROLE)
    app = create_app(settings, database_url)
    transport = asgi_transport(app)
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client


def as_caller(name: str, *roles: str) -> dict[str, str]:
    return {"X-User-Id": name, "X-User-Roles": ", ".join(roles)}


OWNER = as_caller("alice")
STRANGER = as_caller("mallory", "orders:read")
FULFILMENT = as_caller("warehouse", FULFILMENT_ROLE)
ADMIN = as_caller("ops", "orders:admin")


async def alices_order(client: httpx.AsyncClient) -> str:
    return await new_order(client, headers=OWNER)


@pytest.mark.parametrize(
    ("action", "body"), [("pay", payment()), ("ship", SHIPMENT), ("deliver", {})]
)
async def test_the_owner_may_not_pay_ship_or_deliver(
    gateway: httpx.AsyncClient, pool: asyncpg.Pool, action: str, body: object
) -> None:
    order_id = await alices_order(gateway)
    before = await row_counts(pool)

    refused = await send_command(gateway, order_id, action, body, headers=OWNER)

    assert_problem(refused, 403, "forbidden")
    assert await row_counts(pool) == before


async def test_the_owner_may_cancel(gateway: httpx.AsyncClient) -> None:
    order_id = await alices_order(gateway)
    cancelled = await send_command(gateway, order_id, "cancel", {}, headers=OWNER)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


async def test_another_caller_gets_the_same_404_as_for_no_order(gateway: httpx.AsyncClient) -> None:
    order_id = await alices_order(gateway)
    unknown = await gateway.get(f"{ORDERS}/{order_id}", headers=STRANGER)

    for action in ("pay", "cancel"):
        refused = await send_command(gateway, order_id, action, payment(), headers=STRANGER)
        assert refused.content == unknown.content
        assert_problem(refused, 404, "order-not-found")
    history = await gateway.get(f"{ORDERS}/{order_id}/history", headers=STRANGER)
    assert history.content == unknown.content


async def test_fulfilment_moves_any_order_along_and_reads_it(gateway: httpx.AsyncClient) -> None:
    order_id = await alices_order(gateway)

    for action, body in [("pay", payment()), ("ship", SHIPMENT), ("deliver", {})]:
        answer = await send_command(gateway, order_id, action, body, headers=FULFILMENT)
        assert answer.status_code == 200, answer.text
    read = await gateway.get(f"{ORDERS}/{order_id}", headers=FULFILMENT)
    assert read.json()["status"] == "delivered"
    assert (await gateway.get(f"{ORDERS}/{order_id}", headers=OWNER)).content == read.content
    delivered = await gateway.get(ORDERS, params={"status": "delivered"}, headers=FULFILMENT)
    assert order_id in {item["order_id"] for item in delivered.json()["items"]}


async def test_an_admin_may_do_everything(gateway: httpx.AsyncClient) -> None:
    paid_id, cancelled_id = await alices_order(gateway), await alices_order(gateway)
    assert (
        await send_command(gateway, paid_id, "pay", payment(), headers=ADMIN)
    ).status_code == 200
    cancelled = await send_command(gateway, cancelled_id, "cancel", {}, headers=ADMIN)
    assert cancelled.status_code == 200


async def test_keys_are_scoped_to_the_caller(gateway: httpx.AsyncClient) -> None:
    order_id = await alices_order(gateway)
    key = new_key()

    paid = await send_command(gateway, order_id, "pay", payment(), key, headers=FULFILMENT)
    cancelled = await send_command(gateway, order_id, "cancel", {}, key, headers=OWNER)

    assert paid.status_code == cancelled.status_code == 200
    assert cancelled.headers["Idempotent-Replayed"] == "false"
    history = (await gateway.get(f"{ORDERS}/{order_id}/history", headers=OWNER)).json()
    assert [(e["type"], e["data"]["by"]) for e in history["events"][1:]] == [
        ("OrderPaid", "warehouse"),
        ("OrderCancelled", "alice"),
    ]


async def test_no_identity_is_a_401_before_anything_else(gateway: httpx.AsyncClient) -> None:
    order_id = await alices_order(gateway)
    refused = await gateway.post(f"{ORDERS}/{order_id}/pay", content=b"not json")
    assert_problem(refused, 401, "unauthenticated")
