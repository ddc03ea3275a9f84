from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from litestar.testing import AsyncTestClient

from orders.api.app import create_app
from orders.settings import Settings


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(database_url: str) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    app = create_app(Settings(pool_size=4), database_url)
    async with AsyncTestClient(app) as client:
        yield client
