"""(d) With asynchronous replication (no `synchronous_standby_names`) a commit does not wait
for the standby, so an order is acknowledged as soon as the primary alone has it: when the
primary dies before the standby received it, and the standby is promoted, the order is gone,
though its client was told it exists. This is what the README says such a setup may lose;
the barrier cannot help (there is nothing to wait for)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.failover.cluster import Template, cluster
from tests.failover.load import lost_or_changed, serving
from tests.processes.clients import ORDERS, order_payload

pytestmark = pytest.mark.slow

ORDERS_WHILE_BEHIND = 10


async def test_asynchronous_replication_loses_orders_acknowledged_before_the_standby_had_them(
    template: Template, tmp_path: Path
) -> None:
    with cluster(template, synchronous=False) as pair:
        await pair.wait_streaming()
        async with (
            serving(pair.database_url(), tmp_path, 1, {}) as (service,),
            httpx.AsyncClient(base_url=service.base_url, timeout=10.0) as client,
        ):
            # The standby falls behind (frozen here: a slow network or disk does the same);
            # nothing waits for it.
            pair.standby.freeze()
            acknowledged = {}
            for _ in range(ORDERS_WHILE_BEHIND):
                key = f"async-{uuid.uuid4()}"
                answer = await client.post(
                    ORDERS, json=order_payload(), headers={"Idempotency-Key": key}
                )
                assert answer.status_code == 201
                acknowledged[key] = uuid.UUID(answer.json()["order_id"])
            await pair.fail_over_to_a_lagging_standby()

        lost = await lost_or_changed(pair.standby.url(), acknowledged)

    assert sorted(lost) == sorted(acknowledged)
