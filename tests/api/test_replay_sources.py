"""A retry gets the recorded outcome whether this replica remembers it or must read it back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from orders.api.app import create_app
from orders.settings import Settings
from tests.api.conftest import running
from tests.api.helpers import assert_problem, assert_replays, new_key, order_body, post_order
from tests.support.asgi import asgi_transport


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def other_replica(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on the same database that remembers nothing: every retry it answers is read
    back from the store."""
    app = create_app(Settings(pool_size=2, replay_cache_size=0), database_url)
    transport = asgi_transport(app)
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client


async def test_a_retry_on_another_replica_gets_the_same_bytes(
    client: httpx.AsyncClient, other_replica: httpx.AsyncClient
) -> None:
    key = new_key()
    first = await post_order(client, order_body(), key)

    from_store = await post_order(other_replica, order_body(), key)
    from_memory = await post_order(client, order_body(), key)

    assert first.status_code == 201
    assert_replays(first, from_store, from_memory)


async def test_a_rejection_replays_the_same_from_memory_and_from_the_store(
    client: httpx.AsyncClient, other_replica: httpx.AsyncClient
) -> None:
    key = new_key()
    first = await post_order(client, order_body(products=[]), key)

    assert first.status_code == 422
    assert_replays(
        first,
        await post_order(other_replica, order_body(products=[]), key),
        await post_order(client, order_body(products=[]), key),
    )


async def test_a_reused_key_is_refused_from_memory_and_from_the_store(
    client: httpx.AsyncClient, other_replica: httpx.AsyncClient
) -> None:
    key = new_key()
    await post_order(client, order_body(), key)
    changed = order_body(shipping_to="2 Other St")

    for replica in (client, other_replica):
        assert_problem(await post_order(replica, changed, key), 422, "idempotency-key-reused")
