"""`orders serve` on SIGTERM, as Kubernetes stops a pod: a long-poll in flight is answered at
once (an empty page, the same cursor), and the server exits, instead of holding the shutdown
back for the rest of its wait or being cut off."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import asyncpg
import httpx

from tests.feed.feed import page_of, read_to_the_end
from tests.feed.test_long_poll import listeners_at_least
from tests.processes.services import served
from tests.projections.support import eventually


async def test_sigterm_answers_a_waiting_long_poll_and_the_server_exits(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    wait = 30
    env = {"ORDERS_FEED_POLL_SECONDS": "300"}
    async with (
        served(database_url, tmp_path, env=env) as orders,
        httpx.AsyncClient(base_url=orders.base_url, timeout=wait + 30) as client,
    ):
        _, caught_up = await read_to_the_end(client)
        waiting = asyncio.create_task(client.get(f"{caught_up.next}&wait={wait}"))
        await eventually(lambda: listeners_at_least(pool, 1), "the long-poll waits")
        started = time.monotonic()

        os.killpg(orders.process.pid, signal.SIGTERM)
        page = page_of(await waiting)
        code = await asyncio.to_thread(orders.process.wait, wait / 3)

    assert time.monotonic() - started < wait / 3
    assert page.events == [] and page.cursor == caught_up.cursor
    assert code == 0, orders.log_text()[-2000:]
