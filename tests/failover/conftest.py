"""The failover tests' template cluster: initialised and migrated once per session."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.failover.cluster import Template


@pytest_asyncio.fixture(scope="session")
async def template() -> AsyncIterator[Template]:
    root = Path(tempfile.mkdtemp(prefix="orders-failover-template-"))
    built = Template(root)
    try:
        await built.build()
        yield built
    finally:
        shutil.rmtree(root, ignore_errors=True)
