"""The key headers as the IETF draft defines Idempotency-Key: an RFC 8941 sf-string, sent once;
the bare form of older clients and the raw X-Request-Id keep working, and an ambiguous key is
refused, never guessed."""

from __future__ import annotations

import re
from collections.abc import Callable

import asyncpg
import httpx
import msgspec
import pytest

from tests.api.helpers import (
    ORDERS,
    assert_problem,
    assert_replays,
    events_in_stream,
    new_key,
    order_body,
    post_order,
    quoted,
    row_counts,
)


async def post_fields(client: httpx.AsyncClient, *fields: tuple[str, str]) -> httpx.Response:
    """POST an order with these header fields, each sent as its own field, repeats included."""
    headers = [("Content-Type", "application/json"), *fields]
    return await client.post(ORDERS, content=msgspec.json.encode(order_body()), headers=headers)


# -- the draft's quoted form ---------------------------------------------------------------------


async def test_a_quoted_key_is_recorded_without_its_quotes(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = new_key()
    response = await post_order(client, order_body(), quoted(key))

    assert response.status_code == 201, response.text
    assert response.json()["request_id"] == key
    assert await events_in_stream(pool, key) == 1
    assert await events_in_stream(pool, quoted(key)) == 0


@pytest.mark.parametrize(("first", "then"), [(quoted, str), (str, quoted)], ids=["quoted", "bare"])
async def test_the_quoted_and_the_bare_form_name_the_same_key(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    first: Callable[[str], str],
    then: Callable[[str], str],
) -> None:
    key = new_key()
    created = await post_order(client, order_body(), first(key))
    replayed = await post_order(client, order_body(), then(key))

    assert created.status_code == 201, created.text
    assert_replays(created, replayed)
    assert await events_in_stream(pool, key) == 1


async def test_a_quoted_key_and_the_same_bare_x_request_id_are_one_key(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = new_key()
    response = await post_order(client, order_body(), quoted(key), headers={"X-Request-Id": key})

    assert response.status_code == 201, response.text
    assert response.json()["request_id"] == key
    assert await events_in_stream(pool, key) == 1


@pytest.mark.parametrize(
    "prefix",
    [
        "with space ",
        " leading space ",
        'a "quote" ',
        "a back\\slash ",
        '\\" both \\\\ ',
        ", comma ",
    ],
    ids=["space", "leading space", "quote", "backslash", "escapes side by side", "comma"],
)
async def test_a_quoted_key_may_hold_any_printable_ascii(
    client: httpx.AsyncClient, pool: asyncpg.Pool, prefix: str
) -> None:
    key = prefix + new_key()
    created = await post_order(client, order_body(), quoted(key))
    replayed = await post_order(client, order_body(), quoted(key))

    assert created.status_code == 201, created.text
    assert created.json()["request_id"] == key
    assert_replays(created, replayed)
    assert await events_in_stream(pool, key) == 1


# -- the 255-character limit is on the key, not on its spelling ----------------------------------


@pytest.mark.parametrize("character", ["k", '"', "\\"], ids=["plain", "quotes", "backslashes"])
async def test_a_quoted_key_of_255_characters_is_accepted_however_long_its_spelling(
    client: httpx.AsyncClient, character: str
) -> None:
    key = (new_key() + character * 255)[-255:]
    response = await post_order(client, order_body(), quoted(key))

    assert response.status_code == 201, response.text
    assert response.json()["request_id"] == key


@pytest.mark.parametrize("length", [0, 256])
async def test_a_quoted_key_of_0_or_256_characters_is_refused(
    client: httpx.AsyncClient, pool: asyncpg.Pool, length: int
) -> None:
    before = await row_counts(pool)
    key = (new_key() * 8)[:length]

    assert_problem(
        await post_order(client, order_body(), quoted(key)), 400, "invalid-idempotency-key"
    )
    assert await row_counts(pool) == before


# -- an ambiguous key is refused, never guessed --------------------------------------------------

REPEATED_FIELDS = {
    "two Idempotency-Key fields": [("Idempotency-Key", "k-a"), ("Idempotency-Key", "k-b")],
    "the same Idempotency-Key twice": [("Idempotency-Key", "k-a"), ("Idempotency-Key", "k-a")],
    "both forms of one key": [("Idempotency-Key", '"k-a"'), ("Idempotency-Key", "k-a")],
    "two X-Request-Id fields": [("X-Request-Id", "k-a"), ("X-Request-Id", "k-b")],
    "two X-Request-Id fields and an Idempotency-Key": [
        ("Idempotency-Key", "k-a"),
        ("X-Request-Id", "k-a"),
        ("X-Request-Id", "k-b"),
    ],
    "joined by a proxy": [("Idempotency-Key", "k-a, k-b")],
    "joined by a proxy without a space": [("Idempotency-Key", "k-a,k-b")],
    "quoted keys joined by a proxy": [("Idempotency-Key", '"k-a", "k-b"')],
    "a quoted and a bare key joined": [("Idempotency-Key", '"k-a", k-b')],
    "X-Request-Id fields joined by a proxy": [("X-Request-Id", "k-a, k-b")],
    "X-Request-Id fields joined without a space": [("X-Request-Id", "k-a,k-b")],
}


@pytest.mark.parametrize("fields", REPEATED_FIELDS.values(), ids=REPEATED_FIELDS.keys())
async def test_a_key_sent_more_than_once_is_refused_and_nothing_is_recorded(
    client: httpx.AsyncClient, pool: asyncpg.Pool, fields: list[tuple[str, str]]
) -> None:
    suffix = new_key()
    fields = [(name, value.replace("k-", f"{suffix}-")) for name, value in fields]
    before = await row_counts(pool)

    assert_problem(await post_fields(client, *fields), 400, "ambiguous-idempotency-key")

    assert await row_counts(pool) == before
    # Nothing was recorded under either key: each still creates its own order.
    for key in (f"{suffix}-a", f"{suffix}-b"):
        assert (await post_order(client, order_body(), key)).status_code == 201


# -- X-Request-Id stays a raw value; the headers are compared as keys ----------------------------


async def test_x_request_id_is_taken_as_sent_quotes_included(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = new_key()
    response = await post_order(client, order_body(), None, headers={"X-Request-Id": quoted(key)})

    assert response.status_code == 201, response.text
    assert response.json()["request_id"] == quoted(key)
    assert await events_in_stream(pool, key) == 0


async def test_the_same_spelling_in_both_headers_can_name_two_keys(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = new_key()
    response = await post_order(
        client, order_body(), quoted(key), headers={"X-Request-Id": quoted(key)}
    )

    assert_problem(response, 400, "conflicting-idempotency-keys")
    assert await events_in_stream(pool, key) == 0


# -- the OpenAPI document ------------------------------------------------------------------------


async def test_the_openapi_document_shows_both_forms_of_idempotency_key(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    parameters = document["paths"][ORDERS]["post"]["parameters"]
    header = next(p for p in parameters if p["name"] == "Idempotency-Key")
    pattern = re.compile(header["schema"]["pattern"])
    examples = [example["value"] for example in header["examples"].values()]

    assert {example.startswith('"') for example in examples} == {True, False}
    assert all(pattern.fullmatch(example) for example in examples)
    assert not pattern.fullmatch('"unterminated')
    assert header["schema"]["maxLength"] == len(quoted("\\" * 255))
