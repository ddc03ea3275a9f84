"""A client that behaves as the API asks, and what the database recorded per key."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg
import httpx

ORDERS = "/api/v1/orders"
RETRY_STATUSES = frozenset({409, 503})


def order_payload(quantity: int = 1) -> dict[str, Any]:
    return {
        "products": [{"id": 7, "name": "book", "price": 1500, "quantity": quantity}],
        "shipping_to": "1 Main St",
    }


class Answer(NamedTuple):
    status: int
    body: bytes
    headers: httpx.Headers

    @property
    def order_id(self) -> str:
        order_id: str = httpx.Response(self.status, content=self.body).json()["order_id"]
        return order_id


class Attempts(NamedTuple):
    """The answer a client finally got for a key, and what it went through to get it."""

    answer: Answer
    retried_statuses: list[int]
    dropped_connections: int


async def create_order(
    client: httpx.AsyncClient,
    base_urls: Sequence[str],
    key: str,
    payload: dict[str, Any],
    *,
    retry_dropped: bool,
    give_up_after: float = 30.0,
    headers: dict[str, str] | None = None,
) -> Attempts:
    """POST the order to a random one of `base_urls` until it has a final answer (see
    `post_until_answered`)."""
    return await post_until_answered(
        client,
        base_urls,
        ORDERS,
        key,
        payload,
        retry_dropped=retry_dropped,
        give_up_after=give_up_after,
        headers=headers,
    )


async def command_order(
    client: httpx.AsyncClient,
    base_urls: Sequence[str],
    order_id: str,
    action: str,
    key: str,
    body: dict[str, Any],
) -> Attempts:
    """POST a lifecycle command (`action` with `body`) to a random one of `base_urls` until it
    has a final answer (see `post_until_answered`)."""
    path = f"{ORDERS}/{order_id}/{action}"
    return await post_until_answered(client, base_urls, path, key, body, retry_dropped=False)


async def post_until_answered(
    client: httpx.AsyncClient,
    base_urls: Sequence[str],
    path: str,
    key: str,
    payload: dict[str, Any],
    *,
    retry_dropped: bool,
    give_up_after: float = 30.0,
    headers: dict[str, str] | None = None,
) -> Attempts:
    """POST `payload` to `path` on a random one of `base_urls` until it has a final answer.

    409 and 503 come with Retry-After: wait that long and send the same key again. A dropped
    or refused connection (the server died) is retried at once on another pick when
    `retry_dropped`, else it propagates. `headers` are sent too (e.g. Authorization).
    """
    deadline = time.monotonic() + give_up_after
    retried: list[int] = []
    dropped = 0
    while True:
        url = random.choice(base_urls) + path
        try:
            sent = {"Idempotency-Key": key, **(headers or {})}
            response = await client.post(url, json=payload, headers=sent)
        except httpx.TransportError:
            if not retry_dropped or time.monotonic() > deadline:
                raise
            dropped += 1
            continue
        retry_after = response.headers.get("Retry-After")
        if response.status_code in RETRY_STATUSES and retry_after and time.monotonic() < deadline:
            retried.append(response.status_code)
            await asyncio.sleep(float(retry_after))
            continue
        answer = Answer(response.status_code, response.content, response.headers)
        return Attempts(answer, retried, dropped)


class Recorded(NamedTuple):
    """Per key: how many events its stream holds, and the ids of the orders made from it."""

    events: dict[str, int]
    orders: dict[str, list[UUID]]


async def recorded(database_url: str, keys: Sequence[str]) -> Recorded:
    conn = await asyncpg.connect(database_url)
    try:
        events = await conn.fetch(
            "SELECT stream_id, count(*) AS n FROM events WHERE stream_id = ANY($1::text[]) "
            "GROUP BY stream_id",
            list(keys),
        )
        orders = await conn.fetch(
            "SELECT request_id, array_agg(order_id) AS ids FROM orders "
            "WHERE request_id = ANY($1::text[]) GROUP BY request_id",
            list(keys),
        )
    finally:
        await conn.close()
    return Recorded(
        events={row["stream_id"]: row["n"] for row in events},
        orders={row["request_id"]: list(row["ids"]) for row in orders},
    )
