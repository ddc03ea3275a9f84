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
