"""Each publishing test gets a fresh database (the publisher's checkpoint is per database), an
exchange of its own on the session's broker, and a recording consumer bound to it before the
publisher starts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from orders.create_order import OrderCreator
from orders.eventstore import EventStore
from orders.eventstore.notify import AppendNotifier
from orders.eventstore.pool import create_pool
from tests.publishing.support import Recorder
from tests.support.broker import Broker
from tests.support.databases import DatabaseFactory

pytestmark = pytest.mark.slow


@pytest_asyncio.fixture(loop_scope="session")
async def database_url(databases: DatabaseFactory) -> str:
    return await databases.create()


@pytest_asyncio.fixture(loop_scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, size=8)
    yield pool
    await pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def creator(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[OrderCreator]:
    """Creates orders as the API does: append, then NOTIFY."""
    notifier = AppendNotifier(database_url)
    notifier.start()
    yield OrderCreator(EventStore(pool, notifier))
    await notifier.stop()


@pytest.fixture
def exchange() -> str:
    return f"orders-test-{uuid.uuid4().hex[:8]}"


@pytest_asyncio.fixture(loop_scope="session")
async def recorder(broker: Broker, exchange: str) -> AsyncIterator[Recorder]:
    recorder = Recorder(broker, exchange)
    await recorder.start()
    yield recorder
    await recorder.close()
