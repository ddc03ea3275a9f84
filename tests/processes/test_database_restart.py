"""PostgreSQL goes down under load and comes back: while it is down the service fails fast with
503 problem details, never 500 or a hang; afterwards it recovers by itself, with no restart.

The test owns a PostgreSQL server of its own, so stopping it disturbs no other test."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from orders.database import migrate_database
from orders.embedded import EmbeddedPostgres
from tests.processes.clients import ORDERS, order_payload
from tests.processes.services import Service, embedded_server, served

pytestmark = pytest.mark.slow

DB_TIMEOUT_SECONDS = 1
# A hang shows as a client timeout: well past the service's own bound, far below forever.
CLIENT_TIMEOUT_SECONDS = DB_TIMEOUT_SECONDS * 5
LOAD_CLIENTS = 4
ANSWERS_PER_PHASE = 40
RECOVER_WITHIN_SECONDS = 30


class Answered(NamedTuple):
    phase: str
    answered_in: str
    status: int
    content_type: str
    retry_after: str | None
    body: bytes
    seconds: float


class Load:
    """Clients creating orders with fresh keys nonstop, each answer labelled with the phase
    (up, stopping, down, restarting, recovered) in force when its request was sent."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.phase = "up"
        self.answers: list[Answered] = []
        self.progress = asyncio.Condition()
        self.running = True

    async def run(self) -> None:
        while self.running:
            phase, started = self.phase, time.monotonic()
            key = f"restart-{uuid.uuid4()}"
            response = await self.client.post(
                ORDERS, json=order_payload(), headers={"Idempotency-Key": key}
            )
            async with self.progress:
                self.answers.append(
                    Answered(
                        phase,
                        self.phase,
                        response.status_code,
                        response.headers.get("Content-Type", ""),
                        response.headers.get("Retry-After"),
                        response.content,
                        time.monotonic() - started,
                    )
                )
                self.progress.notify_all()

    def count(self, phase: str) -> int:
        return sum(a.phase == phase for a in self.answers)

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        async with self.progress:
            await asyncio.wait_for(self.progress.wait_for(condition), timeout=30)


async def wait_until_ready(client: httpx.AsyncClient) -> float:
    """Seconds until /health/ready says 200 (fails after RECOVER_WITHIN_SECONDS)."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVER_WITHIN_SECONDS:
        if (await client.get("/health/ready")).status_code == 200:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"not ready {RECOVER_WITHIN_SECONDS} s after PostgreSQL came back")


def assert_fails_fast_with_a_problem(answer: Answered | httpx.Response) -> None:
    if isinstance(answer, httpx.Response):
        status, content_type = answer.status_code, answer.headers["Content-Type"]
        retry_after, body = answer.headers.get("Retry-After"), answer.content
    else:
        status, content_type, retry_after, body = answer[2:6]
    assert status == 503, body
    assert content_type.startswith("application/problem+json")
    assert retry_after is not None and int(retry_after) >= 1
    assert b"Traceback" not in body and b"asyncpg" not in body


def report(load: Load, recovered_after: float) -> None:
    for phase in ("up", "stopping", "down", "restarting", "recovered"):
        answers = [a for a in load.answers if a.phase == phase]
        statuses = dict(Counter(a.status for a in answers))
        slowest = max((a.seconds for a in answers), default=0.0)
        print(f"\n  {phase}: {len(answers)} requests answered {statuses}, slowest {slowest:.3f} s")
    print(f"  ready again {recovered_after:.2f} s after PostgreSQL was started again")


async def run_outage(service: Service, server: EmbeddedPostgres) -> tuple[Load, float]:
    async with httpx.AsyncClient(
        base_url=service.base_url, timeout=CLIENT_TIMEOUT_SECONDS
    ) as client:
        load = Load(client)
        clients = [asyncio.create_task(load.run()) for _ in range(LOAD_CLIENTS)]
        try:
            await load.wait_for(lambda: load.count("up") >= ANSWERS_PER_PHASE)
            load.phase = "stopping"
            await asyncio.to_thread(server.stop)
            load.phase = "down"

            ready = await client.get("/health/ready")
            assert_fails_fast_with_a_problem(ready)
            await load.wait_for(lambda: load.count("down") >= ANSWERS_PER_PHASE)

            load.phase = "restarting"
            await asyncio.to_thread(server.start)
            recovered_after = await wait_until_ready(client)
            load.phase = "recovered"
            await load.wait_for(lambda: load.count("recovered") >= ANSWERS_PER_PHASE)
        finally:
            load.running = False
            await asyncio.gather(*clients)
    return load, recovered_after


async def test_postgresql_restart_under_load_gives_fast_503s_then_recovers_without_restart(
    tmp_path: Path,
) -> None:
    async with embedded_server() as server:
        await migrate_database(server.url)
        env = {"ORDERS_DB_TIMEOUT_SECONDS": str(DB_TIMEOUT_SECONDS)}
        async with served(server.url, tmp_path, env=env) as service:
            load, recovered_after = await run_outage(service, server)
            log = service.log_text()

    report(load, recovered_after)
    error = log.find('"level":"error"')
    assert error == -1, log[error:][:3000]
    assert all(a.status != 500 for a in load.answers)
    for answer in load.answers:
        # Sent and answered in one phase: its answer is that phase's. Across phases (sent
        # before the stop, answered after it, say) it may be either.
        within = answer.phase if answer.phase == answer.answered_in else None
        if within in ("up", "recovered"):
            assert answer.status == 201, answer
        elif within == "down" or answer.status != 201:
            assert_fails_fast_with_a_problem(answer)
