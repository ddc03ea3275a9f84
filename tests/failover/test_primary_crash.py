"""(a) The primary dies (SIGKILL, every process) under a create load from two `serve`
processes whose clients retry; the synchronous standby is promoted. Every acknowledged order is
on the new primary exactly once, under the order id first answered for its key; readiness says
503 while there is no primary and 200 again after, and creates succeed within seconds, with
no restart of the service."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.failover.cluster import Template, cluster
from tests.failover.load import Load, lost_or_changed, serving

pytestmark = pytest.mark.slow

CLIENTS = 8
ACKNOWLEDGED_BEFORE = 40
ACKNOWLEDGED_AFTER = 40
RESUMED_WITHIN_SECONDS = 15.0


async def test_a_primary_killed_under_load_loses_no_acknowledged_order(
    template: Template, tmp_path: Path
) -> None:
    with cluster(template, synchronous=True) as pair:
        await pair.wait_streaming()
        # The standby first: every connection tries it, finds it read-only and moves on.
        url = pair.database_url([pair.standby, pair.primary])
        env = {"ORDERS_DB_TIMEOUT_SECONDS": "2"}
        async with (
            serving(url, tmp_path, 2, env) as (one, two),
            httpx.AsyncClient(timeout=30.0) as client,
        ):
            load = Load(client, [one.base_url, two.base_url], CLIENTS)
            try:
                await load.wait_for(lambda: len(load.acknowledged) >= ACKNOWLEDGED_BEFORE)
                killed_at = time.monotonic()
                pair.primary.crash()
                outage = [(await client.get(f"{s.base_url}/health/ready")) for s in (one, two)]
                await pair.promote_standby()
                promoted_at = time.monotonic()
                await load.wait_for(lambda: len(load.sent_after(promoted_at)) >= ACKNOWLEDGED_AFTER)
                recovered = [(await client.get(f"{s.base_url}/health/ready")) for s in (one, two)]
            finally:
                await load.stop()
            logs = one.log_text() + two.log_text()

        acknowledged = {key: a.order_id for key, a in load.acknowledged.items()}
        assert await lost_or_changed(pair.standby.url(), acknowledged) == {}

    assert [r.status_code for r in outage] == [503, 503]
    assert [r.status_code for r in recovered] == [200, 200]
    resumed = min(a.answered_at for a in load.sent_after(promoted_at)) - killed_at
    print(
        f"\n  {len(acknowledged)} orders acknowledged; promoted {promoted_at - killed_at:.2f} s"
        f" after the kill; first create sent after it answered {resumed:.2f} s after the kill"
    )
    assert resumed < RESUMED_WITHIN_SECONDS
    assert '"level":"error"' not in logs
