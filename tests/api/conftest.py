"""The service in-process: the real app over a real database of the test module's own.

The client is httpx over the ASGI app in the test's own event loop (not Litestar's
AsyncTestClient, which runs the app on a portal thread and so serialises requests): requests
sent with asyncio.gather really are concurrent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest_asyncio
from litestar import Litestar

from orders.api.app import create_app
from orders.settings import Settings
from tests.support.asgi import asgi_transport


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[None]:
    """The app started (its lifespan entered) for the duration of the block.

    The lifespan runs in a task of its own: it holds an anyio task group, which must be left by
    the task that entered it, and a fixture's setup and teardown run in different tasks.
    """
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    ready = asyncio.create_task(started.wait())
    await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
    if not started.is_set():
        ready.cancel()
        await task  # raises the reason the app did not start
    try:
        yield
    finally:
        stop.set()
        await task


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(pool_size=4), database_url)
    transport = asgi_transport(app)
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client
