"""Forward-only, numbered SQL migrations shipped in the package.

Files are `NNNN_name.sql` in `orders/eventstore/migrations/`. Each applies in its own
transaction and is recorded with its checksum. A database that knows a version this code
does not, or whose applied file has since changed, is refused rather than guessed at.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from orders.eventstore.errors import MigrationError
from orders.eventstore.store import driver_errors

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

# Any fixed 64-bit number of our own: every process that migrates takes the same lock, so N
# replicas starting together apply each file exactly once while the others wait.
MIGRATION_LOCK_ID = 7_410_253_870_001

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
_LEDGER_EXISTS = "SELECT to_regclass('schema_migrations') IS NOT NULL"
_APPLIED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
_RECORD = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def bundled_migrations() -> list[Migration]:
    """The migrations shipped with this code, in version order."""
    found = []
    for entry in resources.files("orders.eventstore").joinpath("migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def migrate(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply every pending migration; return the versions applied by this call."""
    known = bundled_migrations() if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        # Only when missing: even `IF NOT EXISTS` needs the right to create tables, which the
        # service's own role (0004) lacks, and `orders serve` migrates before it serves.
        if not await conn.fetchval(_LEDGER_EXISTS):
            await conn.execute(_CREATE_LEDGER)
        applied = {row["version"]: row for row in await conn.fetch(_APPLIED)}
        _check_applied(applied, known)
        done = []
        for migration in known:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(_RECORD, migration.version, migration.name, migration.checksum)
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)


async def pending_migrations(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
) -> list[int]:
    """Versions this code has that the database lacks (raises if the database is ahead)."""
    known = bundled_migrations()
    exists = await conn.fetchval(_LEDGER_EXISTS)
    applied = {row["version"]: row for row in await conn.fetch(_APPLIED)} if exists else {}
    _check_applied(applied, known)
    return [m.version for m in known if m.version not in applied]


def _check_applied(applied: dict[int, asyncpg.Record], known: list[Migration]) -> None:
    by_version = {m.version: m for m in known}
    for version, row in applied.items():
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {version} ({row['name']}), which this code does "
                "not know: it is newer than the code; deploy the newer code instead"
            )
        if migration.checksum != row["checksum"]:
            raise MigrationError(
                f"migration {version} ({row['name']}) was changed after it was applied; "
                "migrations are forward-only: add a new file instead of editing an old one"
            )


async def schema_is_current(pool: asyncpg.Pool) -> bool:
    """Whether the database answers and has every migration this code knows (no more)."""
    with driver_errors(None):
        async with pool.acquire() as conn:
            try:
                return not await pending_migrations(conn)
            except MigrationError:
                return False
