"""Hostile input on the lifecycle routes: every malformed body, order id, precondition or key
sent to pay, ship, deliver, cancel or an order's history gets a 4xx problem and leaves the
event store as it was."""

from __future__ import annotations

import uuid
from typing import Final
from urllib.parse import quote

import asyncpg
import httpx
import msgspec
import pytest

from tests.api.helpers import (
    ORDERS,
    PROBLEM_JSON,
    SHIPMENT,
    new_key,
    new_order,
    payment,
    row_counts,
    send_command,
)
from tests.hostile.support import (
    HOSTILE_KEYS,
    MALFORMED_SF_STRINGS,
    assert_refused_unrecorded,
    exchange,
    raw_post,
)

PAY: Final = msgspec.json.encode(payment())

# (action, raw body) -> what it is; each a 400 invalid-body.
MALFORMED: Final[dict[str, tuple[str, bytes]]] = {
    "unterminated JSON": ("pay", PAY[:-1]),
    "single quotes": ("pay", b"{'amount': 3250, 'reference': 'r'}"),
    "trailing garbage": ("pay", PAY + b"x"),
    "two documents": ("pay", PAY + PAY),
    "a BOM": ("pay", b"\xef\xbb\xbf" + PAY),
    "invalid UTF-8": ("pay", PAY.replace(b"psp-1", b"\xff\xfe")),
    "lone surrogate": ("pay", PAY.replace(b"psp-1", b"\\ud800")),
    "nested 2000 deep": ("pay", b"[" * 2_000 + b"]" * 2_000),
    "amount as a string": ("pay", PAY.replace(b"3250", b'"3250"')),
    "amount 3250.0": ("pay", PAY.replace(b"3250", b"3250.0")),
    "amount true": ("pay", PAY.replace(b"3250", b"true")),
    "amount null": ("pay", PAY.replace(b"3250", b"null")),
    "amount -1": ("pay", PAY.replace(b"3250", b"-1")),
    "amount -3250": ("pay", PAY.replace(b"3250", b"-3250")),
    "amount 1e400": ("pay", PAY.replace(b"3250", b"1e400")),
    "amount 2**64": ("pay", PAY.replace(b"3250", b"18446744073709551616")),
    "amount over 10**15": ("pay", PAY.replace(b"3250", b"1000000000000001")),
    "amount NaN": ("pay", PAY.replace(b"3250", b"NaN")),
    "reference a number": ("pay", b'{"amount": 3250, "reference": 7}'),
    "reference blank": ("pay", b'{"amount": 3250, "reference": "\\t"}'),
    "reference over 200": ("pay", msgspec.json.encode(payment(reference="r" * 201))),
    "reference with NUL": ("pay", b'{"amount": 3250, "reference": "a\\u0000"}'),
    "an unknown field": ("pay", PAY[:-1] + b',"currency":"EUR"}'),
    "a repeated amount": ("pay", PAY[:-1] + b',"amount":1}'),
    "a repeated member spelled with an escape": ("pay", PAY[:-1] + b',"\\u0061mount":1}'),
    "an array": ("pay", b'[3250, "psp-1"]'),
    "null": ("pay", b"null"),
    "a number": ("pay", b"3250"),
    "whitespace": ("pay", b"   "),
    "no tracking": ("ship", b'{"carrier": "DHL"}'),
    "tracking a list": ("ship", b'{"carrier": "DHL", "tracking": ["1"]}'),
    "carrier an object": ("ship", b'{"carrier": {"name": "DHL"}, "tracking": "1"}'),
    "a note on a delivery": ("deliver", b'{"note": "at the door"}'),
    "a delivery as an array": ("deliver", b"[]"),
    "reason a number": ("cancel", b'{"reason": 1}'),
    "reason over 500": ("cancel", msgspec.json.encode({"reason": "r" * 501})),
    "reason with NUL": ("cancel", b'{"reason": "a\\u0000b"}'),
    "a refund asked for": ("cancel", b'{"reason": "x", "refund_owed": 0}'),
}

# Path segments that name no order: each a 404 problem, whatever the route.
BAD_ORDER_IDS: Final = [
    "not-a-uuid",
    "1",
    "-1",
    "00000000-0000-0000-0000-00000000000g",
    f"{uuid.uuid4()}x",
    "x" * 5000,
    "' OR 1=1 --",
    "%00",
    "..",
    "%2e%2e%2f",
    "\u00e9",
]

BAD_IF_MATCH: Final = ["1", '"1', "W/1", '"1" x', "**", '*, "1"', '"a"b', '"\x7f"', "W/", ","]
BAD_IF_NONE_MATCH: Final = ["1", '"1', '*, "1"', "W/", '"1" "2"']


async def command(
    client: httpx.AsyncClient,
    order_id: str,
    action: str,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> httpx.Response:
    """POST raw `body` as JSON, with a new key unless `headers` brings its own."""
    sent = headers or [(b"Idempotency-Key", new_key().encode())]
    sent = [(b"Content-Type", b"application/json"), *sent]
    return await client.post(f"{ORDERS}/{order_id}/{action}", content=body, headers=sent)


@pytest.mark.parametrize(("action", "body"), MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_command_body_is_refused_unrecorded(
    client: httpx.AsyncClient, pool: asyncpg.Pool, action: str, body: bytes
) -> None:
    order_id = await new_order(client)
    await assert_refused_unrecorded(
        pool, lambda: command(client, order_id, action, body), 400, "invalid-body"
    )


async def test_a_huge_amount_the_schema_allows_is_a_mismatch_and_records_nothing(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    order_id = await new_order(client)
    body = PAY.replace(b"3250", b"1000000000000000")
    await assert_refused_unrecorded(
        pool, lambda: command(client, order_id, "pay", body), 422, "amount-mismatch"
    )


@pytest.mark.parametrize(
    "body",
    [
        msgspec.json.encode({"reason": "x" * 4096}),
        b'{"reason": "' + b"x" * 10 * 1024 * 1024 + b'"}',
    ],
    ids=["just over 4 KiB", "10 MB"],
)
async def test_an_oversize_command_body_is_refused_unrecorded(
    client: httpx.AsyncClient, pool: asyncpg.Pool, body: bytes
) -> None:
    order_id = await new_order(client)
    await assert_refused_unrecorded(
        pool, lambda: command(client, order_id, "cancel", body), 413, "body-too-large"
    )


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_command_body_not_sent_as_json_is_refused_unrecorded(
    client: httpx.AsyncClient, pool: asyncpg.Pool, content_type: str
) -> None:
    order_id = await new_order(client)

    async def send() -> httpx.Response:
        headers = {"Content-Type": content_type, "Idempotency-Key": new_key()}
        return await client.post(f"{ORDERS}/{order_id}/pay", content=PAY, headers=headers)

    await assert_refused_unrecorded(pool, send, 415, "unsupported-media-type")


@pytest.mark.parametrize("order_id", BAD_ORDER_IDS)
@pytest.mark.parametrize("route", ["pay", "ship", "deliver", "cancel", "history"])
async def test_a_path_that_names_no_order_is_a_4xx_problem_and_records_nothing(
    client: httpx.AsyncClient, pool: asyncpg.Pool, order_id: str, route: str
) -> None:
    path = f"{ORDERS}/{quote(order_id, safe='%')}/{route}"
    before = await row_counts(pool)

    if route == "history":
        answer = await client.get(path)
    else:
        answer = await client.post(
            path,
            content=PAY if route == "pay" else b"{}",
            headers={"Content-Type": "application/json", "Idempotency-Key": new_key()},
        )

    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert answer.json()["status"] == answer.status_code
    assert await row_counts(pool) == before


@pytest.mark.parametrize("value", BAD_IF_MATCH)
async def test_a_malformed_if_match_is_refused_unrecorded(
    client: httpx.AsyncClient, pool: asyncpg.Pool, value: str
) -> None:
    order_id = await new_order(client)
    headers = [(b"Idempotency-Key", new_key().encode()), (b"If-Match", value.encode())]
    await assert_refused_unrecorded(
        pool, lambda: command(client, order_id, "pay", PAY, headers), 400, "invalid-parameter"
    )


async def test_a_10_kb_if_match_is_refused_unrecorded(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    order_id = await new_order(client)
    tags = ", ".join(f'"{n}"' for n in range(2, 2000)).encode()
    headers = [(b"Idempotency-Key", new_key().encode()), (b"If-Match", tags)]
    # A long list of well-formed tags is a precondition that fails, not a malformed one.
    await assert_refused_unrecorded(
        pool, lambda: command(client, order_id, "pay", PAY, headers), 412, "precondition-failed"
    )


@pytest.mark.parametrize("value", BAD_IF_NONE_MATCH)
async def test_a_malformed_if_none_match_is_a_400_problem(
    client: httpx.AsyncClient, value: str
) -> None:
    order_id = await new_order(client)
    answer = await client.get(f"{ORDERS}/{order_id}", headers={"If-None-Match": value})
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert answer.json()["type"] == "/problems/invalid-parameter"


@pytest.mark.parametrize("key", HOSTILE_KEYS.values(), ids=HOSTILE_KEYS.keys())
async def test_a_hostile_key_on_a_command_is_refused_unrecorded(
    client: httpx.AsyncClient, pool: asyncpg.Pool, key: bytes
) -> None:
    order_id = await new_order(client)
    headers = [(b"Idempotency-Key", key)]
    await assert_refused_unrecorded(
        pool,
        lambda: command(client, order_id, "cancel", b"{}", headers),
        400,
        "invalid-idempotency-key",
    )


@pytest.mark.parametrize(
    ("value", "slug"), MALFORMED_SF_STRINGS.values(), ids=MALFORMED_SF_STRINGS.keys()
)
async def test_a_malformed_sf_string_key_on_a_command_is_refused_unrecorded(
    client: httpx.AsyncClient, pool: asyncpg.Pool, value: bytes, slug: str
) -> None:
    order_id = await new_order(client)
    headers = [(b"Idempotency-Key", value)]
    await assert_refused_unrecorded(
        pool, lambda: command(client, order_id, "cancel", b"{}", headers), 400, slug
    )


@pytest.mark.parametrize(
    ("headers", "slug"),
    [
        ([(b"Idempotency-Key", b"a"), (b"X-Request-Id", b"b")], "conflicting-idempotency-keys"),
        ([(b"Idempotency-Key", b"a"), (b"Idempotency-Key", b"a")], "ambiguous-idempotency-key"),
        ([(b"X-Request-Id", b"a, b")], "ambiguous-idempotency-key"),
        ([(b"X-Request-Id", b"")], "invalid-idempotency-key"),
        ([(b"Idempotency-Key", b"k" * 256)], "invalid-idempotency-key"),
    ],
    ids=["two keys", "the key twice", "a list", "empty", "256 characters"],
)
async def test_keys_no_one_key_can_be_read_from_are_refused_unrecorded(
    client: httpx.AsyncClient, pool: asyncpg.Pool, headers: list[tuple[bytes, bytes]], slug: str
) -> None:
    order_id = await new_order(client)
    await assert_refused_unrecorded(
        pool, lambda: command(client, order_id, "deliver", b"{}", headers), 400, slug
    )


async def test_a_refusal_leaves_the_key_free_for_a_corrected_command(
    client: httpx.AsyncClient,
) -> None:
    order_id = await new_order(client)
    key = new_key()
    headers = [(b"Idempotency-Key", key.encode())]

    refused = await command(client, order_id, "ship", msgspec.json.encode({"carrier": 1}), headers)
    paid = await send_command(client, order_id, "pay", payment(), key)
    shipped = await send_command(client, order_id, "ship", SHIPMENT, new_key())

    assert refused.status_code == 400
    assert paid.status_code == shipped.status_code == 200
    assert paid.headers["Idempotent-Replayed"] == "false"


# -- on the wire ---------------------------------------------------------------------------------


async def test_an_oversize_command_is_refused_by_its_content_length_before_it_is_sent(
    server: tuple[str, int], client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    order_id = await new_order(client)
    before = await row_counts(pool)
    # Only the first KiB is ever sent: an answer proves the server did not wait for the rest.
    request = raw_post(
        b"{" * 1024,
        extra=f"Idempotency-Key: {new_key()}\r\n".encode(),
        length=5 * 1024,
        path=f"{ORDERS}/{order_id}/cancel".encode(),
    )

    status, headers, body = await exchange(server, request)

    assert status == 413
    assert headers["content-type"] == PROBLEM_JSON
    assert msgspec.json.decode(body)["type"] == "/problems/body-too-large"
    assert await row_counts(pool) == before


@pytest.mark.parametrize(
    "path", [b"/api/v1/orders/%ZZ/pay", b"/api/v1/orders/%00/pay", b"/api/v1/orders//pay"]
)
async def test_a_raw_path_that_names_no_order_is_a_4xx_problem(
    server: tuple[str, int], pool: asyncpg.Pool, path: bytes
) -> None:
    before = await row_counts(pool)
    request = raw_post(b"{}", extra=f"Idempotency-Key: {new_key()}\r\n".encode(), path=path)

    status, headers, body = await exchange(server, request)

    assert 400 <= status < 500
    assert headers["content-type"] == PROBLEM_JSON
    assert msgspec.json.decode(body)["status"] == status
    assert await row_counts(pool) == before
