"""`ORDERS_AUTH=jwt`: keys belong to callers, and every read is the caller's own."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from tests.api.helpers import (
    ORDERS,
    SHIPMENT,
    as_read,
    assert_problem,
    assert_replays,
    new_key,
    order_body,
    payment,
    post_order,
    send_command,
)
from tests.auth.tokens import bearer


def caller() -> str:
    """A caller no other test uses."""
    return f"user-{uuid.uuid4()}"


async def test_one_key_from_two_callers_makes_two_independent_orders(
    client: httpx.AsyncClient,
) -> None:
    alice, bob, key = caller(), caller(), new_key()

    for_alice = await post_order(client, order_body(), key, headers=bearer(alice))
    for_bob = await post_order(
        client, order_body(shipping_to="2 Other St"), key, headers=bearer(bob)
    )

    assert for_alice.status_code == for_bob.status_code == 201
    assert for_alice.json()["order_id"] != for_bob.json()["order_id"]
    assert for_bob.headers["Idempotent-Replayed"] == "false"
    assert for_bob.json()["shipping_to"] == "2 Other St"


async def test_a_callers_retry_replays_its_own_outcome(client: httpx.AsyncClient) -> None:
    alice, key = caller(), new_key()
    first = await post_order(client, order_body(), key, headers=bearer(alice))
    await post_order(client, order_body(shipping_to="elsewhere"), key, headers=bearer(caller()))

    again = await post_order(client, order_body(), key, headers=bearer(alice))

    assert_replays(first, again)


async def test_a_payload_mismatch_is_judged_within_one_caller(client: httpx.AsyncClient) -> None:
    alice, bob, key = caller(), caller(), new_key()
    await post_order(client, order_body(), key, headers=bearer(alice))

    other_payload_other_caller = await post_order(
        client, order_body(shipping_to="3 Bob St"), key, headers=bearer(bob)
    )
    other_payload_same_caller = await post_order(
        client, order_body(shipping_to="3 Bob St"), key, headers=bearer(alice)
    )

    assert other_payload_other_caller.status_code == 201
    assert_problem(other_payload_same_caller, 422, "idempotency-key-reused")


async def test_another_callers_order_is_not_found_exactly_like_a_missing_one(
    client: httpx.AsyncClient,
) -> None:
    alice = caller()
    created = await post_order(client, order_body(), new_key(), headers=bearer(alice))
    order_id = created.json()["order_id"]
    missing_id = str(uuid.uuid4())

    own = await client.get(f"{ORDERS}/{order_id}", headers=bearer(alice))
    someone_else = await client.get(f"{ORDERS}/{order_id}", headers=bearer(caller()))
    missing = await client.get(f"{ORDERS}/{missing_id}", headers=bearer(alice))

    assert own.status_code == 200 and own.json() == as_read(created.json())
    assert_problem(someone_else, 404, "order-not-found")
    assert someone_else.content.replace(order_id.encode(), missing_id.encode()) == missing.content


async def test_list_and_count_are_the_callers_own(client: httpx.AsyncClient) -> None:
    alice, bob = caller(), caller()
    mine = [
        as_read((await post_order(client, order_body(), new_key(), headers=bearer(alice))).json())
        for _ in range(3)
    ]
    await post_order(client, order_body(), new_key(), headers=bearer(bob))
    rejected = await post_order(client, order_body(products=[]), new_key(), headers=bearer(alice))
    assert rejected.status_code == 422

    page = (await client.get(ORDERS, params={"limit": 500}, headers=bearer(alice))).json()
    count = (await client.get(f"{ORDERS}/count", headers=bearer(alice))).json()

    assert page == {"items": mine, "next_after": None}
    assert count == {"count": 3}


async def test_a_caller_pages_through_its_own_orders_only(client: httpx.AsyncClient) -> None:
    alice, bob = caller(), caller()
    mine = []
    for _ in range(5):
        mine.append(await post_order(client, order_body(), new_key(), headers=bearer(alice)))
        await post_order(client, order_body(), new_key(), headers=bearer(bob))

    seen: list[object] = []
    after: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"after": after} if after else {})}
        page = (await client.get(ORDERS, params=params, headers=bearer(alice))).json()
        seen += page["items"]
        after = page["next_after"]
        if after is None:
            break

    assert seen == [as_read(response.json()) for response in mine]


async def test_an_admin_reads_every_callers_orders(client: httpx.AsyncClient) -> None:
    alice, bob = caller(), caller()
    for_alice = await post_order(client, order_body(), new_key(), headers=bearer(alice))
    for_bob = await post_order(client, order_body(), new_key(), headers=bearer(bob))
    admin = bearer(caller(), scope="orders:read orders:admin")

    fetched = [
        (await client.get(r.headers["Location"], headers=admin)).json()
        for r in (for_alice, for_bob)
    ]
    listed = (await client.get(ORDERS, params={"limit": 500}, headers=admin)).json()["items"]
    count = (await client.get(f"{ORDERS}/count", headers=admin)).json()["count"]

    assert fetched == [as_read(for_alice.json()), as_read(for_bob.json())]
    assert as_read(for_alice.json()) in listed and as_read(for_bob.json()) in listed
    assert count >= 2 and count == await _all_orders(client)


async def _all_orders(client: httpx.AsyncClient) -> int:
    admin = bearer("admin", roles=["orders:admin"])
    total, after = 0, None
    while True:
        params: dict[str, str | int] = {"limit": 500, **({"after": after} if after else {})}
        page = (await client.get(ORDERS, params=params, headers=admin)).json()
        total += len(page["items"])
        after = page["next_after"]
        if after is None:
            return total


async def test_an_admin_role_in_another_claim_than_the_configured_ones_is_not_admin(
    client: httpx.AsyncClient,
) -> None:
    alice = caller()
    created = await post_order(client, order_body(), new_key(), headers=bearer(alice))

    pretender = bearer(caller(), groups=["orders:admin"], scope="orders:read")

    assert_problem(
        await client.get(created.headers["Location"], headers=pretender), 404, "order-not-found"
    )


async def test_the_owner_is_recorded_in_the_event_and_the_read_model(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    alice = caller()
    created = (await post_order(client, order_body(), new_key(), headers=bearer(alice))).json()

    row = await db.fetchrow(
        "SELECT e.data ->> 'owner' AS in_event, o.owner AS in_read_model "
        "FROM events e JOIN orders o ON o.position = e.position WHERE o.order_id = $1",
        uuid.UUID(created["order_id"]),
    )

    assert row is not None and row["in_event"] == row["in_read_model"] == alice


async def test_a_tokens_fulfilment_role_pays_another_callers_order(
    client: httpx.AsyncClient,
) -> None:
    created = await post_order(client, order_body(), new_key(), headers=bearer(caller()))
    order_id = created.json()["order_id"]
    clerk = bearer(caller(), roles=["orders:fulfilment"])

    paid = await send_command(client, order_id, "pay", payment(), headers=clerk)
    by_owner_token = await send_command(
        client, order_id, "ship", SHIPMENT, headers=bearer(caller())
    )

    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    assert_problem(by_owner_token, 404, "order-not-found")
