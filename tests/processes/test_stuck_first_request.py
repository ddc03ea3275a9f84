"""A duplicate that arrives while the first request's transaction is stuck gets a bounded 409
with Retry-After, not a hang; once the stuck transaction is gone, a retry is served."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio

from tests.processes.clients import ORDERS, order_payload
from tests.processes.services import Service, served

pytestmark = pytest.mark.slow

LOCK_TIMEOUT_MS = 300
# A hang shows as a client timeout, far beyond the lock timeout the service should honour.
CLIENT_TIMEOUT_SECONDS = 10.0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Service]:
    env = {"ORDERS_LOCK_TIMEOUT_MS": str(LOCK_TIMEOUT_MS)}
    async with served(database_url, tmp_path_factory.mktemp("logs"), env=env) as running:
        yield running


async def test_a_duplicate_of_a_stuck_first_request_gets_409_then_201_once_it_is_gone(
    service: Service, database_url: str
) -> None:
    key = f"stuck-{uuid.uuid4()}"
    holder = await asyncpg.connect(database_url)
    stuck = holder.transaction()
    await stuck.start()
    try:
        # The first request's append, written but not committed: its row lock is held.
        await holder.execute(
            "INSERT INTO events (stream_id, version, event_type, data) "
            "VALUES ($1, 1, 'OrderCreated', '{}'::jsonb)",
            key,
        )
        async with httpx.AsyncClient(
            base_url=service.base_url, timeout=CLIENT_TIMEOUT_SECONDS
        ) as client:
            started = time.monotonic()
            blocked = await client.post(
                ORDERS, json=order_payload(), headers={"Idempotency-Key": key}
            )
            waited = time.monotonic() - started
            await stuck.rollback()
            retried = await client.post(
                ORDERS, json=order_payload(), headers={"Idempotency-Key": key}
            )
    finally:
        await holder.close()  # ends the stuck transaction too, if the test failed before

    print(
        f"\nduplicate of a stuck first request answered {blocked.status_code} after {waited:.3f} s"
    )
    assert blocked.status_code == 409
    assert blocked.headers["Content-Type"].startswith("application/problem+json")
    assert blocked.json()["type"] == "/problems/request-in-progress"
    assert int(blocked.headers["Retry-After"]) >= 1
    assert retried.status_code == 201
    assert retried.headers["Idempotent-Replayed"] == "false"
