"""What the API tests share: request bodies, random keys, problem checks, database counts."""

from __future__ import annotations

import uuid
from typing import Any, Final

import asyncpg
import httpx
import msgspec

ORDERS: Final = "/api/v1/orders"
PROBLEM_JSON: Final = "application/problem+json"


def new_key() -> str:
    """A key no other test uses, so tests never depend on each other or on a wiped database."""
    return f"test-{uuid.uuid4()}"


def quoted(key: str) -> str:
    """`key` as an RFC 8941 sf-string, the draft's form of Idempotency-Key: in double quotes,
    with `"` and `\\` escaped by a backslash."""
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def order_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "products": [
            {"id": 1, "name": "book", "price": 1500, "quantity": 2},
            {"id": 2, "name": "pen", "price": 250},
        ],
        "shipping_to": "1 Main St",
    }
    return {**body, **overrides}


async def post_order(
    client: httpx.AsyncClient,
    body: object,
    key: str | None,
    *,
    path: str = ORDERS,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST `body` (JSON-encoded unless already bytes) with `key` as Idempotency-Key."""
    content = body if isinstance(body, bytes) else msgspec.json.encode(body)
    sent = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        sent["Idempotency-Key"] = key
    return await client.post(path, content=content, headers=sent)


async def new_order(
    client: httpx.AsyncClient, *, headers: dict[str, str] | None = None, **overrides: Any
) -> str:
    """Create an order (`order_body(**overrides)`, as the caller of `headers`); its id."""
    created = await post_order(client, order_body(**overrides), new_key(), headers=headers)
    assert created.status_code == 201, created.text
    order_id: str = created.json()["order_id"]
    return order_id


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem of the given kind; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"/problems/{slug}"
    assert problem["status"] == status
    assert isinstance(problem["title"], str) and problem["title"]
    assert isinstance(problem["detail"], str) and problem["detail"]
    return problem


def assert_replays(first: httpx.Response, *replays: httpx.Response) -> None:
    """Each of `replays` is `first` replayed: same status, same bytes, same Location, marked."""
    assert first.headers["Idempotent-Replayed"] == "false"
    for replay in replays:
        assert replay.status_code == first.status_code
        assert replay.content == first.content
        assert replay.headers["content-type"] == first.headers["content-type"]
        assert replay.headers.get("Location") == first.headers.get("Location")
        assert replay.headers["Idempotent-Replayed"] == "true"


async def events_in_stream(pool: asyncpg.Pool, key: str) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", key)
    return count


async def row_counts(pool: asyncpg.Pool) -> tuple[int, int]:
    """(events, orders): what a refused request must leave unchanged."""
    row = await pool.fetchrow("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM orders)")
    assert row is not None
    return row[0], row[1]


async def send_command(
    client: httpx.AsyncClient,
    order_id: str,
    action: str,
    body: object = None,
    key: str | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a lifecycle command (`body` JSON-encoded, `{}` when None) with `key` as
    Idempotency-Key (a new one when None)."""
    content = msgspec.json.encode({} if body is None else body)
    sent = {"Content-Type": "application/json", **(headers or {})}
    sent["Idempotency-Key"] = new_key() if key is None else key
    return await client.post(f"{ORDERS}/{order_id}/{action}", content=content, headers=sent)


def payment(total: int = 3250, reference: str = "psp-1") -> dict[str, object]:
    """A pay body for `order_body()`'s total (2 x 1500 + 250)."""
    return {"amount": total, "reference": reference}


SHIPMENT: Final = {"carrier": "DHL", "tracking": "JJD000390007"}


def as_read(created: dict[str, Any]) -> dict[str, Any]:
    """A create's answer as a read of the new order shows it: at version 1, last changed when
    it was created."""
    return {**created, "version": 1, "updated_at": created["created_at"]}
