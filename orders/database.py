"""Which PostgreSQL the process uses: `DATABASE_URL`, or the embedded server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from orders.embedded import EmbeddedPostgres
from orders.eventstore.migrate import migrate
from orders.eventstore.pool import connect
from orders.settings import Settings

log = logging.getLogger(__name__)


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The configured database's URL; without one, the embedded server in `data_dir`,
    started for the duration of the block (and reused across runs: its data stays)."""
    if settings.database_url:
        yield settings.database_url
        return
    with EmbeddedPostgres(settings.data_dir) as server:
        yield server.url


async def migrate_database(url: str) -> list[int]:
    """Apply pending migrations (safe with many processes at once); return what was applied."""
    conn = await connect(url, application_name="orders-migrate")
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    log.info("migrations applied", extra={"applied": applied})
    return applied
