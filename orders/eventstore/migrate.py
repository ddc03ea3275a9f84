"""Forward-only, numbered SQL migrations shipped in the package.

Files are `NNNN_name.sql` in `orders/eventstore/migrations/`. Each applies in its own
transaction and is recorded in a ledger with its checksum; one whose applied file has since
changed is refused rather than guessed at. A file whose first line is
`-- orders: no transaction` runs outside any transaction, one statement at a time (each ends
with `;` at the end of a line): what `CREATE INDEX CONCURRENTLY` needs. Such a file must be
safe to run again from the start, since a crash can stop it between two statements.

Upgrades roll: the migrate Job runs while the previous release still serves, and its pods may
restart (migrating first) until the new ones replace them. So every migration keeps the
previous release working (expand now, contract later: add with defaults, never rename or
drop what it reads), and a database with migrations newer than the code is accepted, as long
as every migration the code knows is applied unchanged. Only a database that has newer ones
yet lacks one the code knows (two diverging histories) is refused.

Two ledgers. Releases up to 6c320ab read `schema_migrations` strictly: a version there they do
not know makes them refuse the database (never ready, and `serve` will not start). So that
table keeps exactly 0001-0004, and each migration from 0005 on is recorded in
`schema_migrations_since_0005` instead, which those releases never read. This code reads both.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from orders.eventstore.errors import MigrationError
from orders.eventstore.store import driver_errors

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
NO_TRANSACTION = "-- orders: no transaction"
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)

# Any fixed 64-bit number of our own: every process that migrates takes the same lock, so N
# replicas starting together apply each file exactly once while the others wait.
MIGRATION_LOCK_ID = 7_410_253_870_001
# The others wait by trying again, not in pg_advisory_lock: a session blocked in a statement
# holds a snapshot, CREATE INDEX CONCURRENTLY waits for every older snapshot to go, and the
# two would wait for each other (a deadlock that PostgreSQL breaks by failing one of them).
LOCK_RETRY_SECONDS = 0.2

# The last version recorded in `schema_migrations`; later ones go to the second ledger.
LAST_IN_FIRST_LEDGER = 4

_CREATE_FIRST_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
# The service's role (created by 0004) checks readiness against both ledgers, so it reads this
# one too, as it reads the first (0004 grants that).
_CREATE_SECOND_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations_since_0005 (LIKE schema_migrations INCLUDING ALL);
GRANT SELECT ON schema_migrations_since_0005 TO orders_service;
"""
_LEDGERS_EXIST = """
SELECT to_regclass('schema_migrations') IS NOT NULL AS first,
       to_regclass('schema_migrations_since_0005') IS NOT NULL AS second
"""
_APPLIED_FIRST = "SELECT version, name, checksum FROM schema_migrations"
_APPLIED_BOTH = """
SELECT version, name, checksum FROM schema_migrations
UNION ALL
SELECT version, name, checksum FROM schema_migrations_since_0005
"""
_RECORD_FIRST = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"
_RECORD_SECOND = (
    "INSERT INTO schema_migrations_since_0005 (version, name, checksum) VALUES ($1, $2, $3)"
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def transactional(self) -> bool:
        return not self.sql.startswith(NO_TRANSACTION)

    def statements(self) -> list[str]:
        """A no-transaction migration's statements, in order (comment-only pieces dropped)."""
        pieces = (piece.strip() for piece in _STATEMENT_END.split(self.sql))
        return [piece for piece in pieces if any(_is_sql(line) for line in piece.splitlines())]


def _is_sql(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("--")


def bundled_migrations() -> list[Migration]:
    """The migrations shipped with this code, in version order."""
    found = []
    for entry in resources.files("orders.eventstore").joinpath("migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def migrate(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply every pending migration; return the versions applied by this call.

    A database ahead of the code gets nothing applied, and the log says so.
    """
    known = bundled_migrations() if migrations is None else migrations
    await _take_migration_lock(conn)
    try:
        # Only when missing: even `IF NOT EXISTS` needs the right to create tables, which the
        # service's own role (0004) lacks, and `orders serve` migrates before it serves.
        [exists] = await conn.fetch(_LEDGERS_EXIST)
        if not exists["first"]:
            await conn.execute(_CREATE_FIRST_LEDGER)
        applied = await _applied(conn)
        newer = _newer_versions(applied, known)
        if newer:
            log.info(
                "the database has migrations newer than this code; applying nothing",
                extra={"newer": newer},
            )
        done = []
        for migration in known:
            if migration.version in applied:
                continue
            if migration.transactional:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await _record(conn, migration)
            else:
                for statement in migration.statements():
                    await conn.execute(statement)
                await _record(conn, migration)
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)


async def _take_migration_lock(conn: asyncpg.Connection) -> None:
    """Wait for the migration lock by trying it again and again (see LOCK_RETRY_SECONDS)."""
    while True:
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK_ID):
            return
        await asyncio.sleep(LOCK_RETRY_SECONDS)


async def _record(conn: asyncpg.Connection, migration: Migration) -> None:
    if migration.version <= LAST_IN_FIRST_LEDGER:
        await conn.execute(_RECORD_FIRST, migration.version, migration.name, migration.checksum)
        return
    # Made here, not up front: the grant needs the role that 0004 creates, and this runs
    # after 0004 in the same call or a later one. Idempotent, so every later migration
    # passes through it too.
    await conn.execute(_CREATE_SECOND_LEDGER)
    await conn.execute(_RECORD_SECOND, migration.version, migration.name, migration.checksum)


async def _applied(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
) -> dict[int, asyncpg.Record]:
    """Every recorded migration by version, from both ledgers (either may not exist yet)."""
    [exists] = await conn.fetch(_LEDGERS_EXIST)
    if not exists["first"]:
        return {}
    rows = await conn.fetch(_APPLIED_BOTH if exists["second"] else _APPLIED_FIRST)
    return {row["version"]: row for row in rows}


async def pending_migrations(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    migrations: list[Migration] | None = None,
) -> list[int]:
    """Versions this code has that the database lacks (raises where the two disagree)."""
    known = bundled_migrations() if migrations is None else migrations
    applied = await _applied(conn)
    _newer_versions(applied, known)
    return [m.version for m in known if m.version not in applied]


def _newer_versions(applied: dict[int, asyncpg.Record], known: list[Migration]) -> list[int]:
    """The applied versions this code does not know: a newer release's, and welcome as long
    as every one the code knows is applied unchanged."""
    by_version = {m.version: m for m in known}
    for version, row in applied.items():
        migration = by_version.get(version)
        if migration is not None and migration.checksum != row["checksum"]:
            raise MigrationError(
                f"migration {version} ({row['name']}) was changed after it was applied; "
                "migrations are forward-only: add a new file instead of editing an old one"
            )
    newer = sorted(set(applied) - set(by_version))
    missing = [version for version in by_version if version not in applied]
    if newer and missing:
        raise MigrationError(
            f"the database has migrations {newer}, which this code does not know, yet lacks "
            f"{missing}, which it does: their histories diverged; deploy code that knows both"
        )
    return newer


async def schema_is_current(pool: asyncpg.Pool) -> bool:
    """Whether the database answers and has every migration this code knows, unchanged
    (newer ones too are fine: they keep this code working)."""
    with driver_errors(None):
        async with pool.acquire() as conn:
            try:
                return not await pending_migrations(conn)
            except MigrationError:
                return False
