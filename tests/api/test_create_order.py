"""POST /api/v1/orders: one key, one outcome, however often and however concurrently it is sent."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import asyncpg
import httpx
import msgspec
import pytest

from tests.api.helpers import (
    ORDERS,
    as_read,
    assert_problem,
    assert_replays,
    events_in_stream,
    new_key,
    order_body,
    post_order,
)


async def test_a_new_order_is_created_with_its_location_and_full_body(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = new_key()
    response = await post_order(client, order_body(), key)

    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["Idempotent-Replayed"] == "false"
    body = response.json()
    order_id = uuid.UUID(body["order_id"])
    assert response.headers["Location"] == f"{ORDERS}/{order_id}"
    assert body["request_id"] == key
    assert body["status"] == "created"
    assert body["products"] == [
        {"id": 1, "name": "book", "price": 1500, "quantity": 2},
        {"id": 2, "name": "pen", "price": 250, "quantity": 1},
    ]
    assert body["shipping_to"] == "1 Main St"
    assert body["total"] == 3250
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None
    assert await events_in_stream(pool, key) == 1


async def test_the_created_order_can_be_read_at_its_location(client: httpx.AsyncClient) -> None:
    created = await post_order(client, order_body(), new_key())

    read = await client.get(created.headers["Location"])

    assert read.status_code == 200
    assert read.json() == as_read(created.json())


async def test_a_replay_returns_the_recorded_answer_byte_for_byte(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = new_key()
    first = await post_order(client, order_body(), key)
    # The same payload spelled differently: other key order and whitespace, default spelled out.
    respelled = (
        b'{ "shipping_to": "1 Main St", "products": [ {"quantity": 2, "price": 1500, "id": 1,'
        b' "name": "book"}, {"id": 2, "name": "pen", "price": 250, "quantity": 1} ] }'
    )
    replays = [
        await post_order(client, order_body(), key),
        await post_order(client, respelled, key),
    ]

    assert first.status_code == 201
    assert_replays(first, *replays)
    assert await events_in_stream(pool, key) == 1


async def test_the_older_create_path_is_the_same_operation(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = new_key()
    created = await post_order(client, order_body(), key, path=f"{ORDERS}/create")
    replayed = await post_order(client, order_body(), key)
    replayed_on_old_path = await post_order(client, order_body(), key, path=f"{ORDERS}/create")

    assert created.status_code == 201
    assert created.headers["Location"].startswith(f"{ORDERS}/")
    assert_replays(created, replayed, replayed_on_old_path)
    assert await events_in_stream(pool, key) == 1


async def test_the_key_may_come_as_x_request_id(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = new_key()
    created = await post_order(client, order_body(), None, headers={"X-Request-Id": key})
    replayed = await post_order(client, order_body(), key)

    assert created.status_code == 201
    assert created.json()["request_id"] == key
    assert_replays(created, replayed)
    assert await events_in_stream(pool, key) == 1


async def test_both_key_headers_are_accepted_when_equal(client: httpx.AsyncClient) -> None:
    key = new_key()
    response = await post_order(client, order_body(), key, headers={"X-Request-Id": key})

    assert response.status_code == 201
    assert response.json()["request_id"] == key


async def test_both_key_headers_with_different_values_are_refused(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key, other = new_key(), new_key()
    response = await post_order(client, order_body(), key, headers={"X-Request-Id": other})

    assert_problem(response, 400, "conflicting-idempotency-keys")
    assert await events_in_stream(pool, key) == 0
    assert await events_in_stream(pool, other) == 0


@pytest.mark.parametrize(
    "key",
    [None, "", "k" * 256, "has space", " leading", "trailing\t", "caf\u00e9", "tab\there", "\x7f"],
    ids=[
        "missing",
        "empty",
        "256 chars",
        "space",
        "leading space",
        "tab",
        "non-ascii",
        "inner tab",
        "DEL",
    ],
)
async def test_a_missing_or_malformed_key_is_refused(
    client: httpx.AsyncClient, key: str | None
) -> None:
    headers = {} if key is None else {b"Idempotency-Key": key.encode("utf-8")}
    response = await client.post(
        ORDERS, json=order_body(), headers={b"Content-Type": b"application/json", **headers}
    )
    assert_problem(response, 400, "invalid-idempotency-key")


@pytest.mark.parametrize("control", ["\x01", "\x1f", "\x0b"])
async def test_a_key_with_a_control_character_is_refused(
    client: httpx.AsyncClient, pool: asyncpg.Pool, control: str
) -> None:
    key = f"{new_key()}{control}x"
    # Raw bytes: httpx would refuse to send some of these as str header values.
    response = await client.post(
        ORDERS,
        json=order_body(),
        headers=[(b"Content-Type", b"application/json"), (b"Idempotency-Key", key.encode())],
    )
    assert_problem(response, 400, "invalid-idempotency-key")
    assert await events_in_stream(pool, key) == 0


async def test_keys_of_1_and_255_visible_characters_are_accepted(
    client: httpx.AsyncClient,
) -> None:
    # The module's database is its own, so the one one-character key here is fresh.
    for key in ["~", (uuid.uuid4().hex * 8)[:255]]:
        response = await post_order(client, order_body(), key)
        assert response.status_code == 201, response.text
        assert response.json()["request_id"] == key


async def test_the_same_key_with_another_payload_is_refused_as_reused(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = new_key()
    created = await post_order(client, order_body(), key)
    reused = await post_order(client, order_body(shipping_to="2 Main St"), key)
    replayed = await post_order(client, order_body(), key)

    problem = assert_problem(reused, 422, "idempotency-key-reused")
    assert problem["request_id"] == key
    assert replayed.content == created.content
    assert await events_in_stream(pool, key) == 1


async def test_a_rejected_order_is_recorded_and_replayed_identically(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = new_key()
    too_many = order_body(products=[{"id": n, "price": 1} for n in range(1, 102)])
    first = await post_order(client, too_many, key)
    replay = await post_order(client, too_many, key)
    other_payload = await post_order(client, order_body(), key)

    problem = assert_problem(first, 422, "order-rejected")
    assert problem["reason"] == "too_many_lines"
    assert problem["request_id"] == key
    assert_replays(first, replay)
    assert_problem(other_payload, 422, "idempotency-key-reused")
    assert await events_in_stream(pool, key) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (order_body(products=[]), "no_products"),
        (order_body(products=[{"id": 1, "price": 10**10 + 1}]), "total_too_large"),
        (order_body(products=[{"id": 1, "price": 10**9, "quantity": 11}]), "total_too_large"),
    ],
    ids=["no products", "total over 10^10", "total over 10^10 by quantity"],
)
async def test_each_business_rule_rejects_with_its_reason(
    client: httpx.AsyncClient, body: dict[str, object], reason: str
) -> None:
    problem = assert_problem(await post_order(client, body, new_key()), 422, "order-rejected")
    assert problem["reason"] == reason


@pytest.mark.parametrize(
    "body",
    [
        order_body(products=[{"id": n, "price": 1} for n in range(1, 101)]),
        order_body(products=[{"id": 1, "price": 10**10}]),
    ],
    ids=["exactly 100 lines", "total exactly 10^10"],
)
async def test_an_order_exactly_at_a_limit_is_created(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    assert (await post_order(client, body, new_key())).status_code == 201


INVALID_BODIES = {
    "malformed json": b'{"products": [',
    "empty body": b"",
    "not an object": b"[]",
    "wrong type for products": {"products": "book", "shipping_to": "1 Main St"},
    "wrong type for price": order_body(products=[{"id": 1, "price": "15.00"}]),
    "float price": order_body(products=[{"id": 1, "price": 15.5}]),
    "unknown top-level field": {**order_body(), "coupon": "FREE"},
    "unknown product field": order_body(products=[{"id": 1, "price": 1, "colour": "red"}]),
    "missing shipping_to": {"products": order_body()["products"]},
    "blank shipping_to": order_body(shipping_to="   "),
    "negative price": order_body(products=[{"id": 1, "price": -1}]),
    "negative quantity": order_body(products=[{"id": 1, "price": 1, "quantity": -2}]),
    "quantity 0": order_body(products=[{"id": 1, "price": 1, "quantity": 0}]),
    "product id 0": order_body(products=[{"id": 0, "price": 1}]),
}


@pytest.mark.parametrize("body", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
async def test_an_invalid_body_is_refused_unrecorded_and_a_corrected_retry_succeeds(
    client: httpx.AsyncClient, pool: asyncpg.Pool, body: object
) -> None:
    key = new_key()
    assert_problem(await post_order(client, body, key), 400, "invalid-body")
    assert await events_in_stream(pool, key) == 0

    retry = await post_order(client, order_body(), key)
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "false"


async def test_a_body_over_64_kib_is_refused_unrecorded_and_a_corrected_retry_succeeds(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = new_key()
    body = order_body(shipping_to="x")
    encoded = msgspec.json.encode(body)
    oversized = encoded[:-1] + b" " * (64 * 1024 + 1 - len(encoded)) + b"}"
    assert len(oversized) == 64 * 1024 + 1

    assert_problem(await post_order(client, oversized, key), 413, "body-too-large")
    assert await events_in_stream(pool, key) == 0
    assert (await post_order(client, body, key)).status_code == 201


async def test_a_body_of_exactly_64_kib_is_accepted(client: httpx.AsyncClient) -> None:
    encoded = msgspec.json.encode(order_body())
    padded = encoded[:-1] + b" " * (64 * 1024 - len(encoded)) + b"}"
    assert (await post_order(client, padded, new_key())).status_code == 201


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", None],
)
async def test_a_body_not_sent_as_json_is_refused_unrecorded_and_a_retry_succeeds(
    client: httpx.AsyncClient, pool: asyncpg.Pool, content_type: str | None
) -> None:
    key = new_key()
    headers = {"Idempotency-Key": key}
    if content_type is not None:
        headers["Content-Type"] = content_type
    refused = await client.post(ORDERS, content=msgspec.json.encode(order_body()), headers=headers)

    assert_problem(refused, 415, "unsupported-media-type")
    assert await events_in_stream(pool, key) == 0
    assert (await post_order(client, order_body(), key)).status_code == 201


async def test_concurrent_duplicates_all_get_the_one_recorded_order(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = new_key()
    responses = await asyncio.gather(*(post_order(client, order_body(), key) for _ in range(50)))

    assert [r.status_code for r in responses] == [201] * 50
    assert len({r.content for r in responses}) == 1
    assert len({r.json()["order_id"] for r in responses}) == 1
    assert sorted(r.headers["Idempotent-Replayed"] for r in responses) == ["false"] + ["true"] * 49
    assert await events_in_stream(pool, key) == 1
