"""The service in-process twice over: through ASGI (`client`, from tests/api) for what the app
decides, and behind a real uvicorn on a loopback socket (`server`) for what only a server sees:
raw bytes on the wire, oversized headers, a body announced but never sent."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
import uvicorn

from orders.api.app import create_app
from orders.settings import Settings
from tests.api.conftest import client

__all__ = ["client", "server"]

STARTUP_DEADLINE_SECONDS = 10.0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(database_url: str) -> AsyncIterator[tuple[str, int]]:
    """(host, port) of uvicorn serving the app, configured as `orders serve` configures it."""
    app = create_app(Settings(pool_size=2), database_url)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(STARTUP_DEADLINE_SECONDS):
            while not server.started:
                if task.done():
                    await task  # raises why it did not start
                await asyncio.sleep(0.01)
        host, port = listener.getsockname()
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as probe:
            assert (await probe.get("/health/live")).status_code == 200
        yield host, port
    finally:
        server.should_exit = True
        await task
        listener.close()
