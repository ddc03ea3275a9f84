"""One of two service processes dies (SIGKILL) under a create load whose clients retry the
same key: no acknowledged order is lost, no key gets two, every retry gets the recorded one."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.processes.clients import Attempts, create_order, order_payload, recorded
from tests.processes.services import served

pytestmark = pytest.mark.slow

KEYS = 200
CLIENTS_PER_KEY = 2
IN_FLIGHT = 40
KILL_AFTER_ACKNOWLEDGED = 60


async def test_killing_a_process_mid_load_loses_no_acknowledged_order_and_duplicates_none(
    database_url: str, tmp_path: Path
) -> None:
    keys = [f"kill-{uuid.uuid4()}" for _ in range(KEYS)]
    sends = [key for key in keys for _ in range(CLIENTS_PER_KEY)]
    acknowledged: list[str] = []
    enough_acknowledged = asyncio.Event()
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    limits = httpx.Limits(max_connections=IN_FLIGHT * 2)

    async with (
        served(database_url, tmp_path) as doomed,
        served(database_url, tmp_path) as survivor,
        httpx.AsyncClient(limits=limits, timeout=30.0) as client,
    ):
        urls = [doomed.base_url, survivor.base_url]

        async def one_client(key: str) -> Attempts:
            async with in_flight:
                attempt = await create_order(client, urls, key, order_payload(), retry_dropped=True)
            if attempt.answer.status == 201:
                acknowledged.append(key)
                if len(acknowledged) >= KILL_AFTER_ACKNOWLEDGED:
                    enough_acknowledged.set()
            return attempt

        load = asyncio.gather(*(one_client(key) for key in sends))
        await asyncio.wait_for(enough_acknowledged.wait(), timeout=30)
        acknowledged_before_kill = len(acknowledged)
        doomed.kill()
        attempts = await load

    by_key: dict[str, set[tuple[int, bytes]]] = {key: set() for key in keys}
    for key, attempt in zip(sends, attempts, strict=True):
        by_key[key].add((attempt.answer.status, attempt.answer.body))
    found = await recorded(database_url, keys)
    dropped = sum(a.dropped_connections for a in attempts)
    retried = Counter(s for a in attempts for s in a.retried_statuses)
    print(
        f"\nkill -9 after {acknowledged_before_kill} acknowledged: {len(acknowledged)} answers "
        f"201 for {len(set(acknowledged))} keys; {sum(found.events.values())} events and "
        f"{sum(len(ids) for ids in found.orders.values())} orders found; {dropped} dropped "
        f"connections retried, retried after {dict(retried)}"
    )
    assert dropped > 0, "the kill dropped no connection: the test did not test a crash"
    assert all(a.answer.status == 201 for a in attempts)
    for key, answers in by_key.items():
        assert len(answers) == 1, f"{key}: {len(answers)} different answers"
        (_, body) = answers.pop()
        assert found.orders.get(key) == [
            uuid.UUID(httpx.Response(201, content=body).json()["order_id"])
        ]
    assert found.events == dict.fromkeys(keys, 1)
