"""After a failover the old primary comes back, rewound with pg_rewind, as the new primary's
synchronous standby. What only it held, a create that timed out waiting for the cut-off
standby (503, never acknowledged), is gone from it; its key's retry made the one order that
both nodes now hold; every order acknowledged before is on both; and creates go on, each
waiting for the rejoined standby."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.failover.cluster import Cluster, Template, cluster
from tests.failover.load import serving
from tests.processes.clients import ORDERS, create_order, order_payload

pytestmark = pytest.mark.slow

REPLAYED_WITHIN_SECONDS = 30.0
POLL_SECONDS = 0.01

ORDER_OF_STREAM = "SELECT data->>'order_id' FROM events WHERE stream_id = $1 AND version = 1"
EVERY_EVENT = "SELECT stream_id, version, event_type, data FROM events ORDER BY stream_id, version"
REPLAYED_ALL = """
SELECT coalesce(bool_and(replay_lsn >= pg_current_wal_lsn()), false)
FROM pg_stat_replication WHERE sync_state = 'sync'
"""


async def fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def standby_replayed_all(pair: Cluster) -> None:
    """Until the synchronous standby has replayed all the primary's WAL: reads on it see
    every commit."""
    conn = await asyncpg.connect(pair.primary.url())
    try:
        async with asyncio.timeout(REPLAYED_WITHIN_SECONDS):
            while True:
                if await conn.fetchval(REPLAYED_ALL):
                    return
                await asyncio.sleep(POLL_SECONDS)
    finally:
        await conn.close()


async def test_an_old_primary_rejoins_without_what_only_it_held(
    template: Template, tmp_path: Path
) -> None:
    env = {"ORDERS_DB_TIMEOUT_SECONDS": "0.5"}
    with cluster(template, synchronous=True) as pair:
        await pair.wait_streaming()
        old_primary = pair.primary
        async with (
            serving(pair.database_url(), tmp_path, 1, env) as [service],
            httpx.AsyncClient(base_url=service.base_url, timeout=10.0) as client,
        ):

            async def create(key: str) -> httpx.Response:
                return await client.post(
                    ORDERS, json=order_payload(), headers={"Idempotency-Key": key}
                )

            before = {}
            for key in (f"rejoin-before-{n}-{uuid.uuid4()}" for n in range(3)):
                created = await create(key)
                assert created.status_code == 201, created.text
                before[key] = created.json()["order_id"]

            pair.standby.freeze()
            unacknowledged_key = f"rejoin-unacknowledged-{uuid.uuid4()}"
            timed_out = await create(unacknowledged_key)
            assert timed_out.status_code == 503, timed_out.text
            [only_on_old] = await fetch(old_primary.url(), ORDER_OF_STREAM, unacknowledged_key)

            await pair.fail_over_to_a_lagging_standby()
            retried = await create_order(
                client, [service.base_url], unacknowledged_key, order_payload(), retry_dropped=True
            )
            assert retried.answer.status == 201, retried
            assert retried.answer.headers["Idempotent-Replayed"] == "false"
            retried_order = retried.answer.order_id
            assert retried_order != only_on_old[0]

            await pair.rejoin_old_primary()
            await pair.wait_streaming()
            after = await create(f"rejoin-after-{uuid.uuid4()}")
            assert after.status_code == 201, after.text  # its commit waited for the old primary

        await standby_replayed_all(pair)
        assert pair.standby is old_primary
        on_new = await fetch(pair.primary.url(), EVERY_EVENT)
        on_old = await fetch(old_primary.url(), EVERY_EVENT)
        assert [tuple(row) for row in on_old] == [tuple(row) for row in on_new]
        [rejoined] = await fetch(old_primary.url(), ORDER_OF_STREAM, unacknowledged_key)
        assert rejoined[0] == retried_order
        for key, order_id in before.items():
            assert [tuple(r) for r in await fetch(old_primary.url(), ORDER_OF_STREAM, key)] == [
                (order_id,)
            ]
