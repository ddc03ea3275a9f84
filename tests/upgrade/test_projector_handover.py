"""The async projector's rollout: the previous release's projector reads lifecycle events it does
not know and moves its checkpoint past them. Status changes recorded while it still leads must
reach the read model all the same once this release's projector runs, beside it or after it.

Real processes of both releases on one database: the previous release's `project` and `serve`,
this release's `migrate`, `serve` (async mode, taking lifecycle commands) and `project`."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

import projections.orders
from orders.eventstore.pool import create_pool
from tests.api.helpers import ORDERS, SHIPMENT, new_key, order_body, payment
from tests.processes.services import Service, run_command, served
from tests.projections.support import (
    assert_read_model_is_the_fold,
    caught_up,
    eventually,
    orders_process,
)
from tests.support.databases import DatabaseFactory, service_login
from tests.upgrade.previous_release import previous_release

pytestmark = pytest.mark.slow

ASYNC = {"ORDERS_PROJECTION_MODE": "async", "ORDERS_READ_WAIT_SECONDS": "10"}
ORDERS_PER_PHASE = 12


async def create(client: httpx.AsyncClient, service: Service, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        created = await client.post(
            f"{service.base_url}{ORDERS}", json=order_body(), headers={"Idempotency-Key": new_key()}
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["order_id"])
    return ids


async def move(
    client: httpx.AsyncClient, service: Service, order_ids: list[str]
) -> dict[str, bytes]:
    """Pay every order, ship some and cancel others: the last answer of each."""
    last: dict[str, bytes] = {}
    for order_id in order_ids:
        then: list[list[tuple[str, object]]] = [[], [("ship", SHIPMENT)], [("cancel", {})]]
        steps = [("pay", payment()), *random.choice(then)]
        for action, body in steps:
            answer = await client.post(
                f"{service.base_url}{ORDERS}/{order_id}/{action}",
                json=body,
                headers={"Idempotency-Key": new_key()},
            )
            assert answer.status_code == 200, answer.text
            last[order_id] = answer.content
    return last


async def test_status_changes_the_previous_projector_skipped_reach_the_read_model(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    owner_url = await databases.create(migrated=False)
    previous = previous_release(tmp_path)
    code, output = await run_command(["migrate"], owner_url, previous)
    assert code == 0, output
    pool = await create_pool(owner_url, size=2)
    try:
        async with (
            service_login(owner_url) as service_url,
            httpx.AsyncClient(timeout=15.0) as client,
        ):
            project = ("project", "--batch", "5", "--metrics-port", "0")
            with orders_process(service_url, tmp_path, *project, release=previous) as old_projector:
                async with served(service_url, tmp_path, env=ASYNC, release=previous) as old:
                    before = await create(client, old, ORDERS_PER_PHASE)
                code, output = await run_command(["migrate"], owner_url)
                assert code == 0, output
                async with served(service_url, tmp_path, env=ASYNC) as new:
                    # Only the previous projector: it skips what this release records.
                    moved = await move(client, new, before)
                    await eventually(
                        lambda: caught_up(pool, projections.orders.NAME),
                        f"the previous projector caught up\n{old_projector.log_text()}",
                    )
                    skipped = await pool.fetchval(
                        "SELECT count(*) FROM orders WHERE order_id = ANY($1::uuid[])"
                        " AND status = 'created'",
                        before,
                    )
                    assert skipped == len(before), "the trap this test is about did not happen"

                    # This release's projector beside the previous one, then alone.
                    with orders_process(service_url, tmp_path, *project) as projector:
                        during = await create(client, new, ORDERS_PER_PHASE)
                        moved |= await move(client, new, during)
                        old_projector.kill()
                        after = await create(client, new, ORDERS_PER_PHASE)
                        moved |= await move(client, new, after)
                        await eventually(
                            lambda: caught_up(pool, projections.orders.CHECKPOINT),
                            f"this release's projector caught up\n{projector.log_text()}",
                        )
                        reads = {
                            order_id: (await client.get(f"{new.base_url}{ORDERS}/{order_id}"))
                            for order_id in moved
                        }
        await assert_read_model_is_the_fold(pool)
        for order_id, answer in moved.items():
            assert reads[order_id].content == answer, "a read shows the order as last answered"
        assert '"level":"error"' not in projector.log_text()
    finally:
        await pool.close()
