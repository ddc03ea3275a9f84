"""(c) With the asynchronous projection and the publisher running, `orders project` and `orders
publish` follow the promotion by themselves: each loses the old primary, reconnects through the
same multi-host URL to the new one, and takes up from its checkpoint there. The read model ends
exactly the fold of the events, and the consumer has received exactly the new primary's events
(nothing skipped, nothing the failover took back), each order's in sequence."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.failover.cluster import Template, cluster
from tests.failover.load import Load, lost_or_changed, serving
from tests.projections.support import (
    assert_read_model_is_the_fold,
    caught_up,
    eventually,
    orders_process,
)
from tests.publishing.support import (
    Recorder,
    assert_exactly_the_store,
    delivered_all,
    publisher,
    stored_events,
)
from tests.support.broker import Broker

pytestmark = pytest.mark.slow

CLIENTS = 4
ACKNOWLEDGED_BEFORE = 20
ACKNOWLEDGED_AFTER = 20


async def test_the_projector_and_publisher_resume_on_the_new_primary_exactly(
    template: Template, broker: Broker, tmp_path: Path
) -> None:
    exchange = f"orders-failover-{uuid.uuid4().hex[:8]}"
    recorder = Recorder(broker, exchange)
    await recorder.start()
    with cluster(template, synchronous=True) as pair:
        await pair.wait_streaming()
        url = pair.database_url()
        env = {"ORDERS_PROJECTION_MODE": "async", "ORDERS_DB_TIMEOUT_SECONDS": "2"}
        with (
            orders_process(
                url, tmp_path, "project", "--poll-seconds", "0.1", "--metrics-port", "0"
            ) as projector,
            publisher(
                url, tmp_path, broker, exchange, "--poll-seconds", "0.1", "--metrics-port", "0"
            ) as publishing,
        ):
            async with (
                serving(url, tmp_path, 1, env) as services,
                httpx.AsyncClient(timeout=30.0) as client,
            ):
                load = Load(client, [s.base_url for s in services], CLIENTS)
                try:
                    await load.wait_for(lambda: len(load.acknowledged) >= ACKNOWLEDGED_BEFORE)
                    pair.primary.crash()
                    await pair.promote_standby()
                    promoted_at = time.monotonic()
                    await load.wait_for(
                        lambda: len(load.sent_after(promoted_at)) >= ACKNOWLEDGED_AFTER
                    )
                finally:
                    await load.stop()
            pool = await asyncpg.create_pool(pair.standby.url(), min_size=1, max_size=2)
            try:
                await eventually(
                    lambda: caught_up(pool), f"caught up\n{projector.log_text()[-3000:]}"
                )
                await assert_read_model_is_the_fold(pool)
                await eventually(
                    lambda: delivered_all(recorder, pool),
                    f"published\n{publishing.log_text()[-3000:]}",
                )
                assert_exactly_the_store(recorder.deliveries, await stored_events(pool))
            finally:
                await pool.close()
                await recorder.close()
        acknowledged = {key: a.order_id for key, a in load.acknowledged.items()}
        assert await lost_or_changed(pair.standby.url(), acknowledged) == {}
