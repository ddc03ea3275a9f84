"""An order's life over HTTP: pay, ship, deliver and cancel, each idempotent per caller's key on
the order, with ETags, preconditions and refusals that record nothing."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from tests.api.helpers import (
    ORDERS,
    SHIPMENT,
    assert_problem,
    new_key,
    new_order,
    order_body,
    payment,
    post_order,
    row_counts,
    send_command,
)


async def test_an_order_is_paid_shipped_and_delivered(client: httpx.AsyncClient) -> None:
    order_id = await new_order(client)

    for version, (action, body, status) in enumerate(
        [("pay", payment(), "paid"), ("ship", SHIPMENT, "shipped"), ("deliver", {}, "delivered")],
        start=2,
    ):
        answer = await send_command(client, order_id, action, body)
        assert answer.status_code == 200, answer.text
        assert answer.headers["ETag"] == f'"{version}"'
        assert answer.headers["Idempotent-Replayed"] == "false"
        assert answer.json()["status"] == status
        assert answer.json()["version"] == version
        read = await client.get(f"{ORDERS}/{order_id}")
        assert read.content == answer.content, "the answer is the order exactly as GET shows it"
        assert read.headers["ETag"] == answer.headers["ETag"]


async def test_a_create_sends_the_new_orders_etag(client: httpx.AsyncClient) -> None:
    key = new_key()
    created = await post_order(client, order_body(), key)
    replayed = await post_order(client, order_body(), key)

    assert created.headers["ETag"] == replayed.headers["ETag"] == '"1"'
    paid = await send_command(
        client, created.json()["order_id"], "pay", payment(), headers={"If-Match": '"1"'}
    )
    assert paid.status_code == 200


async def test_a_retry_replays_the_recorded_answer_after_the_order_moved_on(
    client: httpx.AsyncClient,
) -> None:
    order_id = await new_order(client)
    key = new_key()
    paid = await send_command(client, order_id, "pay", payment(), key)
    shipped = await send_command(client, order_id, "ship", SHIPMENT)
    assert shipped.status_code == 200

    again = await send_command(client, order_id, "pay", payment(), key)

    assert again.status_code == 200
    assert again.content == paid.content
    assert again.headers["ETag"] == paid.headers["ETag"] == '"2"'
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_a_create_replays_the_same_bytes_after_the_order_moved_on(
    client: httpx.AsyncClient,
) -> None:
    key = new_key()
    created = await post_order(client, order_body(), key)
    await send_command(client, created.json()["order_id"], "cancel", {"reason": "changed mind"})

    again = await post_order(client, order_body(), key)

    assert again.content == created.content
    assert again.json()["status"] == "created"


async def test_a_key_reused_for_another_command_or_payload_is_a_422(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    order_id = await new_order(client)
    key = new_key()
    assert (await send_command(client, order_id, "pay", payment(), key)).status_code == 200
    before = await row_counts(pool)

    other_command = await send_command(client, order_id, "ship", SHIPMENT, key)
    other_payload = await send_command(client, order_id, "pay", payment(reference="x"), key)

    assert_problem(other_command, 422, "idempotency-key-reused")
    assert_problem(other_payload, 422, "idempotency-key-reused")
    assert await row_counts(pool) == before


async def test_a_command_key_is_scoped_to_its_order(client: httpx.AsyncClient) -> None:
    first, second = await new_order(client), await new_order(client)
    key = new_key()

    one = await send_command(client, first, "pay", payment(), key)
    other = await send_command(client, second, "pay", payment(), key)

    assert one.status_code == other.status_code == 200
    assert other.headers["Idempotent-Replayed"] == "false"
    assert other.json()["order_id"] == second


async def test_a_create_key_does_not_collide_with_a_command_key(
    client: httpx.AsyncClient,
) -> None:
    key = new_key()
    created = await post_order(client, order_body(), key)
    order_id = created.json()["order_id"]

    paid = await send_command(client, order_id, "pay", payment(), key)

    assert paid.status_code == 200
    assert paid.headers["Idempotent-Replayed"] == "false"
    assert (await post_order(client, order_body(), key)).content == created.content


@pytest.mark.parametrize(
    ("steps", "action", "body", "status", "allowed"),
    [
        ([], "ship", SHIPMENT, "created", ["pay", "cancel"]),
        ([], "deliver", {}, "created", ["pay", "cancel"]),
        ([("cancel", {})], "cancel", {}, "cancelled", []),
        ([("pay", payment()), ("ship", SHIPMENT)], "cancel", {}, "shipped", ["deliver"]),
        ([("pay", payment())], "pay", payment(), "paid", ["ship", "cancel"]),
    ],
)
async def test_an_invalid_transition_is_a_409_that_says_what_is_allowed(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    steps: list[tuple[str, object]],
    action: str,
    body: object,
    status: str,
    allowed: list[str],
) -> None:
    order_id = await new_order(client)
    for step, step_body in steps:
        assert (await send_command(client, order_id, step, step_body)).status_code == 200
    before = await row_counts(pool)

    refused = await send_command(client, order_id, action, body)

    problem = assert_problem(refused, 409, "invalid-transition")
    assert problem["order_status"] == status
    assert problem["allowed_actions"] == allowed
    assert await row_counts(pool) == before


async def test_a_payment_of_another_amount_is_a_422_and_records_nothing(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    order_id = await new_order(client)
    before = await row_counts(pool)

    assert_problem(
        await send_command(client, order_id, "pay", payment(total=3249)), 422, "amount-mismatch"
    )
    assert await row_counts(pool) == before
    assert (await client.get(f"{ORDERS}/{order_id}")).json()["status"] == "created"


async def test_a_cancel_after_payment_records_the_refund_owed(client: httpx.AsyncClient) -> None:
    order_id = await new_order(client)
    await send_command(client, order_id, "pay", payment())

    cancelled = await send_command(client, order_id, "cancel", {"reason": "out of stock"})

    assert cancelled.json()["status"] == "cancelled"
    history = (await client.get(f"{ORDERS}/{order_id}/history")).json()
    assert [event["type"] for event in history["events"]] == [
        "OrderCreated",
        "OrderPaid",
        "OrderCancelled",
    ]
    assert history["events"][2]["data"]["refund_owed"] == 3250
    assert history["events"][2]["data"]["reason"] == "out of stock"


async def test_the_history_shows_public_facts_in_version_order(
    client: httpx.AsyncClient,
) -> None:
    order_id = await new_order(client)
    await send_command(client, order_id, "pay", payment(reference="psp-42"))
    await send_command(client, order_id, "ship", SHIPMENT)

    history = (await client.get(f"{ORDERS}/{order_id}/history")).json()

    assert history["order_id"] == order_id
    assert [e["version"] for e in history["events"]] == [1, 2, 3]
    paid = history["events"][1]
    assert paid["type"] == "OrderPaid"
    assert paid["data"]["reference"] == "psp-42"
    assert paid["data"]["amount"] == 3250
    for event in history["events"]:
        assert "fingerprint" not in event["data"] and "request_id" not in event["data"]
        assert event["time"]


async def test_if_match_guards_a_command(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    order_id = await new_order(client)
    before = await row_counts(pool)

    for stale in ['"2"', 'W/"1"', '"x"']:
        refused = await send_command(
            client, order_id, "pay", payment(), headers={"If-Match": stale}
        )
        assert_problem(refused, 412, "precondition-failed")
        assert refused.headers["ETag"] == '"1"'
    assert await row_counts(pool) == before

    paid = await send_command(client, order_id, "pay", payment(), headers={"If-Match": '"3", "1"'})
    assert paid.status_code == 200
    shipped = await send_command(client, order_id, "ship", SHIPMENT, headers={"If-Match": "*"})
    assert shipped.status_code == 200


async def test_a_replay_ignores_a_stale_if_match(client: httpx.AsyncClient) -> None:
    order_id = await new_order(client)
    key = new_key()
    paid = await send_command(client, order_id, "pay", payment(), key, headers={"If-Match": '"1"'})

    again = await send_command(client, order_id, "pay", payment(), key, headers={"If-Match": '"1"'})

    assert again.status_code == 200 and again.content == paid.content


@pytest.mark.parametrize("if_match", ["1", '"1', '*, "1"', '"1" "2"', ""])
async def test_a_malformed_if_match_is_a_400(client: httpx.AsyncClient, if_match: str) -> None:
    order_id = await new_order(client)
    refused = await send_command(client, order_id, "pay", payment(), headers={"If-Match": if_match})
    assert_problem(refused, 400, "invalid-parameter")


async def test_a_get_answers_if_none_match_with_304(client: httpx.AsyncClient) -> None:
    order_id = await new_order(client)
    read = await client.get(f"{ORDERS}/{order_id}")
    assert read.headers["ETag"] == '"1"'

    for tag in ['"1"', 'W/"1"', "*", '"7", "1"']:
        cached = await client.get(f"{ORDERS}/{order_id}", headers={"If-None-Match": tag})
        assert cached.status_code == 304 and cached.content == b""
        assert cached.headers["ETag"] == '"1"'
    await send_command(client, order_id, "pay", payment())
    changed = await client.get(f"{ORDERS}/{order_id}", headers={"If-None-Match": '"1"'})
    assert changed.status_code == 200 and changed.headers["ETag"] == '"2"'


async def test_an_unknown_order_is_the_same_404_as_a_read(client: httpx.AsyncClient) -> None:
    order_id = str(uuid.uuid4())
    read = await client.get(f"{ORDERS}/{order_id}")

    for action in ("pay", "ship", "deliver", "cancel"):
        refused = await send_command(client, order_id, action, {})
        assert_problem(refused, 404, "order-not-found")
        assert refused.content == read.content
    history = await client.get(f"{ORDERS}/{order_id}/history")
    assert history.content == read.content


async def test_existence_is_checked_before_the_key(client: httpx.AsyncClient) -> None:
    unknown = f"{ORDERS}/{uuid.uuid4()}/pay"
    no_key = {"Content-Type": "application/json"}

    assert_problem(
        await client.post(unknown, content=b"{}", headers=no_key), 404, "order-not-found"
    )
    order_id = await new_order(client)
    known = f"{ORDERS}/{order_id}/pay"
    assert_problem(
        await client.post(known, content=b"{}", headers=no_key), 400, "invalid-idempotency-key"
    )


async def test_the_list_filters_by_status(client: httpx.AsyncClient) -> None:
    paid_id, created_id = await new_order(client), await new_order(client)
    await send_command(client, paid_id, "pay", payment())

    paid = await client.get(ORDERS, params={"status": "paid", "limit": 500})
    created = await client.get(ORDERS, params={"status": "created", "limit": 500})

    paid_ids = {item["order_id"] for item in paid.json()["items"]}
    created_ids = {item["order_id"] for item in created.json()["items"]}
    assert paid_id in paid_ids and paid_id not in created_ids
    assert created_id in created_ids and created_id not in paid_ids
    assert all(item["status"] == "paid" for item in paid.json()["items"])
    assert_problem(await client.get(ORDERS, params={"status": "lost"}), 400, "invalid-parameter")


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("pay", {"amount": "3250", "reference": "r"}),
        ("pay", {"amount": 3250}),
        ("pay", {"amount": 3250, "reference": " "}),
        ("pay", {"amount": 3250, "reference": "r", "extra": 1}),
        ("ship", {"carrier": "DHL"}),
        ("cancel", {"reason": "a\u0000b"}),
        ("deliver", {"note": "left at door"}),
        ("cancel", []),
    ],
)
async def test_a_malformed_body_is_a_400_and_records_nothing(
    client: httpx.AsyncClient, pool: asyncpg.Pool, action: str, body: object
) -> None:
    order_id = await new_order(client)
    before = await row_counts(pool)
    assert_problem(await send_command(client, order_id, action, body), 400, "invalid-body")
    assert await row_counts(pool) == before


async def test_a_repeated_member_is_refused(client: httpx.AsyncClient) -> None:
    order_id = await new_order(client)
    refused = await client.post(
        f"{ORDERS}/{order_id}/pay",
        content=b'{"amount": 3250, "reference": "a", "reference": "b"}',
        headers={"Content-Type": "application/json", "Idempotency-Key": new_key()},
    )
    assert_problem(refused, 400, "invalid-body")


async def test_a_body_that_is_not_json_is_a_415(client: httpx.AsyncClient) -> None:
    order_id = await new_order(client)
    refused = await client.post(
        f"{ORDERS}/{order_id}/cancel",
        content=b"reason=x",
        headers={"Content-Type": "text/plain", "Idempotency-Key": new_key()},
    )
    assert_problem(refused, 415, "unsupported-media-type")


async def test_an_empty_body_is_an_empty_command(client: httpx.AsyncClient) -> None:
    order_id = await new_order(client)
    cancelled = await client.post(
        f"{ORDERS}/{order_id}/cancel", headers={"Idempotency-Key": new_key()}
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
