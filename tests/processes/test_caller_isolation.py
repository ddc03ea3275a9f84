"""Two `orders serve` processes in `jwt` mode: random callers send random, overlapping keys, all
at once and spread over both processes. Every (caller, key) makes exactly one order, and no
caller ever gets, or reads, another caller's."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from orders.domain.streams import order_stream_id
from tests.auth.tokens import AUDIENCE, HERE, ISSUER, bearer
from tests.processes.clients import ORDERS, Attempts, create_order
from tests.processes.services import Service, served

pytestmark = pytest.mark.slow

CALLERS = 6
KEYS = 12
DUPLICATES = 3
JWT_ENV = {
    "ORDERS_AUTH": "jwt",
    "ORDERS_JWT_PUBLIC_KEY": str(HERE / "test-only-rsa-public.pem"),
    "ORDERS_JWT_ISSUER": ISSUER,
    "ORDERS_JWT_AUDIENCE": AUDIENCE,
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Service, Service]]:
    logs = tmp_path_factory.mktemp("logs")
    async with (
        served(database_url, logs, env=JWT_ENV) as first,
        served(database_url, logs, env=JWT_ENV) as second,
    ):
        yield first, second


def payload(caller: str, key: str) -> dict[str, Any]:
    """Each pair's own payload, so an answer meant for another pair would show."""
    return {
        "products": [{"id": 1, "name": "book", "price": 1500}],
        "shipping_to": f"{caller} / {key}",
    }


async def test_every_caller_and_key_makes_one_order_seen_by_that_caller_only(
    services: tuple[Service, Service], database_url: str
) -> None:
    # Callers that look alike or like separators, and keys shared between them.
    callers = [f"user:{i}" for i in range(CALLERS - 2)] + ["user", "user:1:"]
    keys = [f"k{i}" for i in range(KEYS)]
    sends = [
        (caller, key)
        for caller in callers
        for key in random.sample(keys, KEYS // 2)
        for _ in range(DUPLICATES)
    ]
    random.shuffle(sends)
    urls = [service.base_url for service in services]

    async with httpx.AsyncClient(timeout=30.0) as client:
        attempts = await asyncio.gather(
            *(
                create_order(
                    client,
                    urls,
                    key,
                    payload(caller, key),
                    retry_dropped=False,
                    headers=bearer(caller),
                )
                for caller, key in sends
            )
        )

    by_pair: dict[tuple[str, str], list[Attempts]] = {}
    for pair, attempt in zip(sends, attempts, strict=True):
        by_pair.setdefault(pair, []).append(attempt)
    for (caller, key), answers in by_pair.items():
        assert {a.answer.status for a in answers} == {201}
        assert len({a.answer.body for a in answers}) == 1, (caller, key)
        body = httpx.Response(201, content=answers[0].answer.body).json()
        assert (body["request_id"], body["shipping_to"]) == (key, f"{caller} / {key}")

    recorded = await _recorded(database_url, list(by_pair))
    assert recorded == {
        pair: (1, pair[0], uuid.UUID(answers[0].answer.order_id))
        for pair, answers in by_pair.items()
    }

    async with httpx.AsyncClient(timeout=30.0) as client:
        for caller in callers:
            own = {
                answers[0].answer.order_id
                for (owner, _), answers in by_pair.items()
                if owner == caller
            }
            for url in urls:
                listed = await client.get(
                    f"{url}{ORDERS}", params={"limit": 500}, headers=bearer(caller)
                )
                count = await client.get(f"{url}{ORDERS}/count", headers=bearer(caller))
                assert {item["order_id"] for item in listed.json()["items"]} == own
                assert count.json() == {"count": len(own)}
            stranger = random.choice([c for c in callers if c != caller])
            for order_id in own:
                other = await client.get(
                    f"{random.choice(urls)}{ORDERS}/{order_id}", headers=bearer(stranger)
                )
                assert other.status_code == 404


async def _recorded(
    database_url: str, pairs: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, str, uuid.UUID]]:
    """Per pair: the events in its stream, and the owner and id of the order made from it."""
    streams = {order_stream_id(caller, key): (caller, key) for caller, key in pairs}
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT e.stream_id, o.owner, o.order_id, "
            "(SELECT count(*) FROM events s WHERE s.stream_id = e.stream_id) AS events "
            "FROM events e JOIN orders o ON o.position = e.position "
            "WHERE e.stream_id = ANY($1::text[])",
            list(streams),
        )
    finally:
        await conn.close()
    return {streams[r["stream_id"]]: (r["events"], r["owner"], r["order_id"]) for r in rows}
