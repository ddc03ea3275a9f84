"""Fixtures shared by every test that needs PostgreSQL.

Tests run against `ORDERS_TEST_DATABASE_URL` when it is set, else against an embedded server
started for the session. Each test module gets its own database, copied from a migrated
template, so no test depends on another's data or on the order tests run in. Tests that
publish get a throwaway RabbitMQ node for the session (`tests.support.broker`), started only
when one of them runs.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import hypothesis
import pytest
import pytest_asyncio

from orders.eventstore import EventStore
from orders.eventstore.pool import create_pool
from tests.support.broker import Broker, installed, throwaway_broker
from tests.support.databases import DatabaseFactory, test_server

# Hypothesis's per-example deadline measures the machine, not the code: on two cores shared
# with PostgreSQL and other test processes, a pure function's example can take 250 ms once.
hypothesis.settings.register_profile("shared-machine", deadline=None)
hypothesis.settings.load_profile("shared-machine")


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    with test_server(os.environ.get("ORDERS_TEST_DATABASE_URL")) as url:
        yield url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def databases(server_url: str) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(server_url)
    await factory.prepare()
    yield factory
    await factory.drop_all()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database_url(databases: DatabaseFactory) -> str:
    """A migrated database of this test module's own."""
    return await databases.create()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, size=8)
    yield pool
    await pool.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> EventStore:
    return EventStore(pool)


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """A RabbitMQ node of this session's own. Without rabbitmq-server the test is skipped on a
    developer's machine (`make test` installs it) and fails under CI."""
    if not installed():
        message = "rabbitmq-server is not installed: run `make rabbitmq`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with throwaway_broker() as node:
        yield node
