"""A commit's wait for the synchronous standby cancelled with `pg_cancel_backend()` (an operator,
a tool, a pooler): PostgreSQL ends the wait with a WARNING and reports the statement as a
success, although only the primary holds its commit. The service must not acknowledge it: the
create and the payment answer 503, and a retry with the same key answers the recorded outcome,
replayed, only once the standby holds it (503 again while it is still cut off)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Awaitable
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.failover.cluster import Cluster, Template, cluster
from tests.failover.load import serving
from tests.processes.clients import ORDERS, order_payload

pytestmark = pytest.mark.slow

DB_TIMEOUT_SECONDS = 4.0
"""Long enough for the test to find the waiting backend and cancel it before the service's own
statement timeout does; short enough that a retry while the standby is cut off gives up soon."""
FOUND_WITHIN_SECONDS = DB_TIMEOUT_SECONDS / 2
CAUGHT_UP_WITHIN_SECONDS = 30.0
POLL_SECONDS = 0.01
PAY = {"amount": 1500, "reference": "psp-1"}  # order_payload()'s total

WAITING_WRITE = """
SELECT pid FROM pg_stat_activity
WHERE wait_event = 'SyncRep' AND application_name = 'orders' AND query LIKE '%INSERT INTO events%'
"""

COMMITTED = """
SELECT (SELECT count(*) FROM events WHERE stream_id = $1)
     + (SELECT count(*) FROM events WHERE event_type = 'OrderPaid')
"""

CAUGHT_UP = """
SELECT coalesce(bool_and(flush_lsn >= pg_current_wal_lsn()), false)
FROM pg_stat_replication WHERE sync_state = 'sync'
"""


async def cancel_once_waiting(admin: asyncpg.Connection) -> None:
    """Poll until exactly one of the service's writes waits for the standby, then cancel it."""
    async with asyncio.timeout(FOUND_WITHIN_SECONDS):
        while True:
            pids = [row["pid"] for row in await admin.fetch(WAITING_WRITE)]
            if pids:
                break
            await asyncio.sleep(POLL_SECONDS)
    assert len(pids) == 1, pids
    assert await admin.fetchval("SELECT pg_cancel_backend($1)", pids[0])


async def answered_after_cancel(
    admin: asyncpg.Connection, request: Awaitable[httpx.Response]
) -> httpx.Response:
    sent = asyncio.ensure_future(request)
    try:
        await cancel_once_waiting(admin)
    except BaseException:
        sent.cancel()
        raise
    return await sent


async def standby_caught_up(pair: Cluster, admin: asyncpg.Connection) -> None:
    """Unfreeze the standby and poll until it has flushed all the primary's WAL."""
    pair.standby.signal(signal.SIGCONT)
    async with asyncio.timeout(CAUGHT_UP_WITHIN_SECONDS):
        while True:
            if await admin.fetchval(CAUGHT_UP):
                return
            await asyncio.sleep(POLL_SECONDS)


def unacknowledged(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert "Retry-After" in response.headers


async def test_a_cancelled_wait_for_the_standby_is_not_acknowledged(
    template: Template, tmp_path: Path
) -> None:
    env = {"ORDERS_DB_TIMEOUT_SECONDS": str(DB_TIMEOUT_SECONDS)}
    with cluster(template, synchronous=True) as pair:
        await pair.wait_streaming()
        admin = await asyncpg.connect(pair.primary.url())
        try:
            async with (
                serving(pair.database_url(), tmp_path, 1, env) as [service],
                httpx.AsyncClient(base_url=service.base_url, timeout=30.0) as client,
            ):
                to_pay = await client.post(
                    ORDERS, json=order_payload(), headers={"Idempotency-Key": str(uuid.uuid4())}
                )
                assert to_pay.status_code == 201
                pay_path = f"{ORDERS}/{to_pay.json()['order_id']}/pay"
                create_key = f"cancelled-{uuid.uuid4()}"
                payload = order_payload()

                def create() -> Awaitable[httpx.Response]:
                    return client.post(
                        ORDERS, json=payload, headers={"Idempotency-Key": create_key}
                    )

                def pay() -> Awaitable[httpx.Response]:
                    return client.post(pay_path, json=PAY, headers={"Idempotency-Key": "pay-1"})

                pair.standby.freeze()
                unacknowledged(await answered_after_cancel(admin, create()))
                unacknowledged(await answered_after_cancel(admin, pay()))
                # Both committed on the primary alone: their retries find the events, and the
                # barrier waits for the standby, in vain.
                assert await admin.fetchval(COMMITTED, create_key) == 2
                unacknowledged(await create())
                unacknowledged(await pay())

                await standby_caught_up(pair, admin)
                created, paid = await create(), await pay()
                assert created.status_code == 201, created.text
                assert created.headers["Idempotent-Replayed"] == "true"
                assert paid.status_code == 200, paid.text
                assert paid.headers["Idempotent-Replayed"] == "true"
                assert paid.json()["status"] == "paid"
        finally:
            await admin.close()
