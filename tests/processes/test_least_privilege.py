"""The service runs as a login role granted `orders_service` (migration 0004): enough to take
and read orders, not enough to rewrite history or the schema; and its logs keep secrets."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import httpx
import msgspec
import pytest
import pytest_asyncio

from tests.processes.clients import ORDERS, order_payload
from tests.processes.services import Service, served
from tests.support.databases import service_login

pytestmark = pytest.mark.slow

BODY_MARKER = f"Secret Street {secrets.token_hex(6)}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service_url(database_url: str) -> AsyncIterator[str]:
    """A login role of this module's own, granted orders_service and nothing else."""
    async with service_login(database_url) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def as_service(service_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(service_url)
    yield conn
    await conn.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(
    service_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Service]:
    async with served(service_url, tmp_path_factory.mktemp("logs")) as running:
        yield running


async def append_raw(conn: asyncpg.Connection, stream_id: str) -> None:
    await conn.execute(
        "INSERT INTO events (stream_id, version, event_type, data) VALUES ($1, 1, 'Probe', '{}')",
        stream_id,
    )


async def test_the_service_role_can_append_and_read_events(as_service: asyncpg.Connection) -> None:
    stream_id = f"probe-{uuid.uuid4()}"
    await append_raw(as_service, stream_id)

    rows = await as_service.fetch("SELECT version FROM events WHERE stream_id = $1", stream_id)
    assert [row["version"] for row in rows] == [1]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET event_type = 'Forged' WHERE stream_id = $1",
        "DELETE FROM events WHERE stream_id = $1",
        "TRUNCATE events",
    ],
)
async def test_the_service_role_may_not_rewrite_or_erase_events(
    as_service: asyncpg.Connection, statement: str
) -> None:
    stream_id = f"probe-{uuid.uuid4()}"
    await append_raw(as_service, stream_id)
    args = [stream_id] if "$1" in statement else []

    # The grant refuses it before the append-only trigger (the second line) is reached.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for table"):
        await as_service.execute(statement, *args)


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE intruder (id int)",
        "DELETE FROM orders",
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'x', 'x')",
        "ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete",
    ],
)
async def test_the_service_role_may_not_change_the_schema_ledger_or_delete_orders(
    as_service: asyncpg.Connection, statement: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await as_service.execute(statement)


async def test_the_service_takes_replays_and_reads_orders_as_the_service_role(
    service: Service,
) -> None:
    key = f"lp-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10.0) as client:
        first = await client.post(ORDERS, json=order_payload(), headers={"Idempotency-Key": key})
        again = await client.post(ORDERS, json=order_payload(), headers={"Idempotency-Key": key})
        read = await client.get(first.headers["Location"])
        count = await client.get(f"{ORDERS}/count")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert read.status_code == 200
    assert count.json()["count"] >= 1


async def test_request_logs_never_hold_the_body_or_the_database_password(
    service: Service, service_url: str
) -> None:
    key = f"log-{uuid.uuid4()}"
    payload = {**order_payload(), "shipping_to": BODY_MARKER}
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10.0) as client:
        created = await client.post(ORDERS, json=payload, headers={"Idempotency-Key": key})
        malformed = await client.post(
            ORDERS,
            content=f'{{"shipping_to": "{BODY_MARKER}"',
            headers={"Idempotency-Key": f"{key}-bad", "Content-Type": "application/json"},
        )
    assert (created.status_code, malformed.status_code) == (201, 400)

    expected = {(key, 201), (f"{key}-bad", 400)}
    log = await _log_with_requests(service, expected)
    assert BODY_MARKER not in log
    password = urlsplit(service_url).password
    assert password and password not in log


def _logged_requests(log: str) -> set[tuple[str, int]]:
    entries = [msgspec.json.decode(line) for line in log.splitlines() if line.startswith("{")]
    return {(e["idempotency_key"], e["status"]) for e in entries if e.get("msg") == "request"}


async def _log_with_requests(service: Service, expected: set[tuple[str, int]]) -> str:
    """The service's log once it holds a line for each expected (key, status); the request log
    is written in batches, so wait for it (bounded: 10 s)."""
    async with asyncio.timeout(10):
        # The condition lives in another process's log file: nothing to await but the file.
        while not _logged_requests(log := service.log_text()) >= expected:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return log
