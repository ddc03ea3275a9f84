"""Clients that create orders until answered, and what they were told: the order id first
answered for each key, and when."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple
from uuid import UUID

import httpx

from tests.processes.clients import create_order, order_payload, recorded
from tests.processes.services import Service, start, wait_ready


@contextlib.asynccontextmanager
async def serving(
    database_url: str, log_dir: Path, count: int, env: Mapping[str, str]
) -> AsyncIterator[list[Service]]:
    """`count` `orders serve` processes, started side by side and ready, stopped after."""
    services = [start(database_url, log_dir, workers=1, env=env) for _ in range(count)]
    try:
        await asyncio.gather(*(wait_ready(service) for service in services))
        yield services
    finally:
        await asyncio.gather(*(service.stop() for service in services))


class Acknowledged(NamedTuple):
    order_id: UUID
    sent_at: float
    answered_at: float


class Load:
    """`clients` loops, each creating orders with fresh keys one after another (retrying 409,
    503 and dropped connections with the same key, as clients should) until `stop()`."""

    def __init__(self, client: httpx.AsyncClient, urls: Sequence[str], clients: int) -> None:
        self._client = client
        self._urls = urls
        self._running = True
        self.acknowledged: dict[str, Acknowledged] = {}
        self._progress = asyncio.Condition()
        self._tasks = [asyncio.create_task(self._run()) for _ in range(clients)]

    async def _run(self) -> None:
        while self._running:
            key = f"failover-{uuid.uuid4()}"
            sent_at = time.monotonic()
            attempts = await create_order(
                self._client, self._urls, key, order_payload(), retry_dropped=True
            )
            assert attempts.answer.status == 201, attempts
            async with self._progress:
                self.acknowledged[key] = Acknowledged(
                    UUID(attempts.answer.order_id), sent_at, time.monotonic()
                )
                self._progress.notify_all()

    def sent_after(self, moment: float) -> list[Acknowledged]:
        return [a for a in self.acknowledged.values() if a.sent_at > moment]

    async def wait_for(self, condition: Callable[[], bool], within: float = 60.0) -> None:
        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(condition), timeout=within)

    async def stop(self) -> None:
        self._running = False
        await asyncio.gather(*self._tasks)


async def lost_or_changed(database_url: str, acknowledged: dict[str, UUID]) -> dict[str, str]:
    """Each acknowledged key the database does not hold exactly once, under the order id its
    client was first answered with, and what it holds instead."""
    found = await recorded(database_url, list(acknowledged))
    wrong: dict[str, str] = {}
    for key, order_id in acknowledged.items():
        events, orders = found.events.get(key, 0), found.orders.get(key, [])
        if events != 1 or orders != [order_id]:
            wrong[key] = f"{events} events, orders {orders}, acknowledged {order_id}"
    return wrong
