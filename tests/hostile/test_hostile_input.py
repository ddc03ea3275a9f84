"""Hostile input: every malformed request gets a 4xx problem and leaves the database as it was;
SQL metacharacters in valid input are stored and read back verbatim (parameterised SQL)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from tests.api.helpers import (
    ORDERS,
    PROBLEM_JSON,
    assert_problem,
    assert_replays,
    new_key,
    order_body,
    post_order,
    quoted,
    row_counts,
)
from tests.hostile.support import (
    HOSTILE_KEYS,
    MALFORMED_SF_STRINGS,
    assert_refused_unrecorded,
    exchange,
    raw_post,
)

SQL_TEXT = [
    "'; DROP TABLE events; --",
    '" OR 1=1 --',
    "$1",
    "\\",
    "\\'; SELECT pg_sleep(10); --",
    "%s %(x)s {0}",
    "Robert'); DROP TABLE orders;--",
    "E'\\x00'",
]
# The same attacks, squeezed into keys: bare (visible ASCII, no comma, no opening quote) where a
# bare key can hold them, and always in the draft's quoted form, which holds spaces too.
SQL_KEYS = ["';DROP_TABLE_events;--", '"OR"1"="1', "\\\\", "1'--", "%s{0}$$", *SQL_TEXT]
SQL_KEY_FORMS = [
    *((key, "bare") for key in SQL_KEYS if re.fullmatch(r'[^",\s][^,\s]*', key)),
    *((key, "quoted") for key in SQL_KEYS),
]


async def stored_event(pool: asyncpg.Pool, key: str) -> dict[str, Any]:
    data = await pool.fetchval("SELECT data FROM events WHERE stream_id = $1", key)
    decoded: dict[str, Any] = msgspec.json.decode(data)
    return decoded


# -- SQL metacharacters in valid input are data, not SQL ----------------------------------------


@pytest.mark.parametrize("text", SQL_TEXT)
async def test_sql_in_text_fields_is_stored_and_read_back_verbatim(
    client: httpx.AsyncClient, pool: asyncpg.Pool, text: str
) -> None:
    key = new_key()
    body = order_body(products=[{"id": 1, "name": text, "price": 1}], shipping_to=text)
    created = await post_order(client, body, key)

    assert created.status_code == 201, created.text
    read = (await client.get(created.headers["Location"])).json()
    assert read["shipping_to"] == text
    assert read["products"][0]["name"] == text
    stored = await stored_event(pool, key)
    assert (stored["shipping_to"], stored["products"][0]["name"]) == (text, text)
    assert await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", key) == 1


@pytest.mark.parametrize(("attack", "form"), SQL_KEY_FORMS)
async def test_sql_in_a_valid_key_is_stored_and_replayed_verbatim(
    client: httpx.AsyncClient, pool: asyncpg.Pool, attack: str, form: str
) -> None:
    key = f"{attack}-{uuid.uuid4()}"  # each test its own key: two forms of one key are one key
    spelling = key if form == "bare" else quoted(key)
    created = await post_order(client, order_body(), spelling)
    replayed = await post_order(client, order_body(), spelling)

    assert created.status_code == 201, created.text
    assert created.json()["request_id"] == key
    assert_replays(created, replayed)
    assert (await stored_event(pool, key))["request_id"] == key


@pytest.mark.parametrize("text", [t for t in SQL_TEXT if " " in t])
async def test_sql_in_a_bare_key_with_spaces_is_refused_unrecorded(
    client: httpx.AsyncClient, pool: asyncpg.Pool, text: str
) -> None:
    await assert_refused_unrecorded(
        pool, lambda: post_order(client, order_body(), text), 400, "invalid-idempotency-key"
    )


# -- malformed bodies: 400, nothing recorded -----------------------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def spliced(body: bytes, at: str, member: bytes) -> bytes:
    """`body` with the raw `member` inserted right after the opening of the object holding
    key `at`."""
    marker = f'{{"{at}"'.encode()
    assert marker in body
    return body.replace(marker, b"{" + member + b"," + marker[1:], 1)


BASE = msgspec.json.encode(order_body())

MALFORMED_BODIES: dict[str, bytes] = {
    "NUL in shipping_to": msgspec.json.encode(order_body(shipping_to="1 Main\u0000St")),
    "NUL in a product name": msgspec.json.encode(
        order_body(products=[{"id": 1, "price": 1, "name": "a\u0000"}])
    ),
    "invalid UTF-8": BASE.replace(b"1 Main St", b"1 Main \xff\xfe St"),
    "overlong UTF-8": BASE.replace(b"1 Main St", b"\xc0\xaf"),
    "lone surrogate escape": BASE.replace(b"1 Main St", b"\\ud800"),
    "10000 nested arrays": nested(10_000),
    "nested arrays in products": b'{"products": ' + nested(10_000) + b', "shipping_to": "a"}',
    "nested objects in a name": b'{"products": [{"id": 1, "price": 1, "name": '
    + b'{"a": ' * 5_000
    + b"1"
    + b"}" * 5_000
    + b'}], "shipping_to": "a"}',
    "unclosed nesting": b"[" * 20_000,
    "price 1e400": BASE.replace(b'"price":1500', b'"price":1e400'),
    "price 2**64": BASE.replace(b'"price":1500', b'"price":18446744073709551616'),
    "id 2**63": BASE.replace(b'"id":1', b'"id":9223372036854775808'),
    "price -1": BASE.replace(b'"price":1500', b'"price":-1'),
    "price 1.5": BASE.replace(b'"price":1500', b'"price":1.5'),
    "price 1.0": BASE.replace(b'"price":1500', b'"price":1.0'),
    "price as a string": BASE.replace(b'"price":1500', b'"price":"1500"'),
    "quantity as a string": BASE.replace(b'"quantity":2', b'"quantity":"2"'),
    "id as a string": BASE.replace(b'"id":1', b'"id":"1"'),
    "quantity true": BASE.replace(b'"quantity":2', b'"quantity":true'),
    "price NaN": BASE.replace(b'"price":1500', b'"price":NaN'),
    "price Infinity": BASE.replace(b'"price":1500', b'"price":Infinity'),
    "repeated shipping_to": spliced(BASE, "products", b'"shipping_to":"a"'),
    "repeated identical shipping_to": BASE[:-1] + b',"shipping_to":"1 Main St"}',
    "repeated products": spliced(BASE, "products", b'"products":[]'),
    "repeated product id": spliced(BASE, "id", b'"id":7'),
    "repeated optional quantity": BASE.replace(b'"quantity":2', b'"quantity":2,"quantity":3'),
    "repeated name spelled with an escape": BASE.replace(
        b'"name":"book"', b'"name":"book","n\\u0061me":"pen"'
    ),
    "a JSON array": b"[]",
    "null": b"null",
    "a string": b'"order"',
    "a number": b"42",
    "empty": b"",
    "whitespace": b"   ",
    "two documents": BASE + BASE,
    "trailing garbage": BASE + b"x",
    "a BOM": b"\xef\xbb\xbf" + BASE,
}


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
async def test_a_malformed_body_is_refused_unrecorded(
    client: httpx.AsyncClient, pool: asyncpg.Pool, body: bytes
) -> None:
    key = new_key()
    await assert_refused_unrecorded(
        pool, lambda: post_order(client, body, key), 400, "invalid-body"
    )
    assert (await post_order(client, order_body(), key)).status_code == 201


async def test_the_repeated_member_check_lets_colons_and_spelled_out_defaults_through(
    client: httpx.AsyncClient,
) -> None:
    body = order_body(
        products=[{"id": 1, "price": 1, "quantity": 1, "name": None}, {"id": 2, "price": 1}],
        shipping_to="Flat 2: 1 Main St",
    )
    assert (await post_order(client, body, new_key())).status_code == 201


# -- size ----------------------------------------------------------------------------------------


async def test_ten_thousand_products_are_refused_as_too_large(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    body = order_body(products=[{"id": n, "price": 1} for n in range(1, 10_001)])
    await assert_refused_unrecorded(
        pool, lambda: post_order(client, body, new_key()), 413, "body-too-large"
    )


async def test_thousands_of_products_under_64_kib_are_rejected_as_too_many_lines(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    body = order_body(products=[{"id": 1, "price": 1}] * 3000)
    assert len(msgspec.json.encode(body)) < 64 * 1024
    key = new_key()

    problem = assert_problem(await post_order(client, body, key), 422, "order-rejected")

    assert problem["reason"] == "too_many_lines"
    assert (await stored_event(pool, key))["reason"] == "too_many_lines"


async def test_a_10_mb_body_is_refused(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    body = b'{"products": [], "shipping_to": "' + b"x" * 10 * 1024 * 1024 + b'"}'
    await assert_refused_unrecorded(
        pool, lambda: post_order(client, body, new_key()), 413, "body-too-large"
    )


# -- content types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "text/json",
        None,
    ],
)
async def test_a_body_not_sent_as_json_is_refused_as_unsupported(
    client: httpx.AsyncClient, pool: asyncpg.Pool, content_type: str | None
) -> None:
    headers = {"Idempotency-Key": new_key()}
    if content_type is not None:
        headers["Content-Type"] = content_type

    async def send() -> httpx.Response:
        return await client.post(ORDERS, content=BASE, headers=headers)

    await assert_refused_unrecorded(pool, send, 415, "unsupported-media-type")


# -- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", HOSTILE_KEYS.values(), ids=HOSTILE_KEYS.keys())
async def test_a_hostile_key_is_refused_unrecorded(
    client: httpx.AsyncClient, pool: asyncpg.Pool, key: bytes
) -> None:
    async def send() -> httpx.Response:
        headers = [(b"Content-Type", b"application/json"), (b"Idempotency-Key", key)]
        return await client.post(ORDERS, content=BASE, headers=headers)

    await assert_refused_unrecorded(pool, send, 400, "invalid-idempotency-key")


@pytest.mark.parametrize(
    ("value", "slug"), MALFORMED_SF_STRINGS.values(), ids=MALFORMED_SF_STRINGS.keys()
)
async def test_a_malformed_sf_string_key_is_refused_unrecorded(
    client: httpx.AsyncClient, pool: asyncpg.Pool, value: bytes, slug: str
) -> None:
    async def send() -> httpx.Response:
        headers = [(b"Content-Type", b"application/json"), (b"Idempotency-Key", value)]
        return await client.post(ORDERS, content=BASE, headers=headers)

    await assert_refused_unrecorded(pool, send, 400, slug)


async def test_a_hostile_x_request_id_is_refused_unrecorded(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    async def send() -> httpx.Response:
        headers = [(b"Content-Type", b"application/json"), (b"X-Request-Id", b"a\x00b")]
        return await client.post(ORDERS, content=BASE, headers=headers)

    await assert_refused_unrecorded(pool, send, 400, "invalid-idempotency-key")


# -- on the wire: what only a real server sees ---------------------------------------------------


async def test_a_10_mb_body_is_refused_by_its_content_length_before_it_is_sent(
    server: tuple[str, int], pool: asyncpg.Pool
) -> None:
    before = await row_counts(pool)
    announced = 10 * 1024 * 1024
    # Only the first KiB is ever sent: an answer proves the server did not wait for the rest.
    request = raw_post(
        b"{" * 1024, extra=f"Idempotency-Key: {new_key()}\r\n".encode(), length=announced
    )

    status, headers, body = await exchange(server, request)

    assert status == 413
    assert headers["content-type"] == PROBLEM_JSON
    assert msgspec.json.decode(body)["type"] == "/problems/body-too-large"
    assert await row_counts(pool) == before


async def test_a_raw_nul_in_a_header_is_refused_by_the_server(
    server: tuple[str, int], pool: asyncpg.Pool
) -> None:
    before = await row_counts(pool)
    status, _, _ = await exchange(server, raw_post(BASE, extra=b"Idempotency-Key: a\x00b\r\n"))
    assert status == 400
    assert await row_counts(pool) == before


async def test_two_key_fields_on_the_wire_are_refused_with_a_problem(
    server: tuple[str, int], pool: asyncpg.Pool
) -> None:
    before = await row_counts(pool)
    keys = f"Idempotency-Key: {new_key()}\r\nIdempotency-Key: {new_key()}\r\n".encode()

    status, headers, body = await exchange(server, raw_post(BASE, extra=keys))

    assert status == 400
    assert headers["content-type"] == PROBLEM_JSON
    assert msgspec.json.decode(body)["type"] == "/problems/ambiguous-idempotency-key"
    assert await row_counts(pool) == before


async def test_a_100_kb_header_is_refused_with_a_problem(
    server: tuple[str, int], pool: asyncpg.Pool
) -> None:
    before = await row_counts(pool)
    padding = b"X-Padding: " + b"a" * 100 * 1024 + b"\r\n"
    key = f"Idempotency-Key: {new_key()}\r\n".encode()

    status, headers, body = await exchange(server, raw_post(BASE, extra=key + padding))

    assert status == 431
    assert headers["content-type"] == PROBLEM_JSON
    assert msgspec.json.decode(body)["type"] == "/problems/headers-too-large"
    assert await row_counts(pool) == before


async def test_the_server_still_answers_after_hostile_requests(
    server: tuple[str, int],
) -> None:
    key = f"Idempotency-Key: {new_key()}\r\n".encode()
    status, _, body = await exchange(server, raw_post(BASE, extra=key))
    assert status == 201
    assert msgspec.json.decode(body)["status"] == "created"
