"""The migration runner: applies each bundled file once, under a lock, and refuses a database
that disagrees with the code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from orders.eventstore import MigrationError
from orders.eventstore.migrate import (
    MIGRATION_LOCK_ID,
    Migration,
    bundled_migrations,
    migrate,
    pending_migrations,
)
from tests.support.databases import DatabaseFactory

CONCURRENT_RUNNERS = 12


@pytest_asyncio.fixture(loop_scope="session")
async def empty_db(databases: DatabaseFactory) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(await databases.create(migrated=False))
    yield conn
    await conn.close()


async def recorded(conn: asyncpg.Connection) -> list[tuple[int, str, str]]:
    rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY 1")
    return [(row["version"], row["name"], row["checksum"]) for row in rows]


async def migration_lock_holders(conn: asyncpg.Connection) -> int:
    # pg_locks splits a bigint advisory key into its high (classid) and low (objid) halves.
    count: int = await conn.fetchval(
        """
        SELECT count(*) FROM pg_locks
        WHERE locktype = 'advisory' AND granted
          AND classid::bigint = $1::bigint >> 32 AND objid::bigint = $1::bigint & 4294967295
        """,
        MIGRATION_LOCK_ID,
    )
    return count


def bundled_ledger() -> list[tuple[int, str, str]]:
    return [(m.version, m.name, m.checksum) for m in bundled_migrations()]


async def test_bundled_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [m.version for m in bundled_migrations()]
    assert versions == list(range(1, len(versions) + 1))


async def test_an_empty_database_gets_every_migration_recorded_with_its_checksum(
    empty_db: asyncpg.Connection,
) -> None:
    assert await pending_migrations(empty_db) == [m.version for m in bundled_migrations()]

    applied = await migrate(empty_db)

    assert applied == [m.version for m in bundled_migrations()]
    assert await recorded(empty_db) == bundled_ledger()
    assert await empty_db.fetchval("SELECT to_regclass('events') IS NOT NULL")
    assert await pending_migrations(empty_db) == []


async def test_migrating_again_applies_nothing(empty_db: asyncpg.Connection) -> None:
    await migrate(empty_db)
    ledger = await recorded(empty_db)

    assert await migrate(empty_db) == []
    assert await recorded(empty_db) == ledger


async def test_concurrent_runners_apply_each_migration_exactly_once(
    databases: DatabaseFactory,
) -> None:
    url = await databases.create(migrated=False)
    conns = await asyncio.gather(*(asyncpg.connect(url) for _ in range(CONCURRENT_RUNNERS)))
    try:
        results = await asyncio.gather(*(migrate(conn) for conn in conns))

        applied = sorted(version for result in results for version in result)
        assert applied == [m.version for m in bundled_migrations()]
        assert await recorded(conns[0]) == bundled_ledger()
        assert await migration_lock_holders(conns[0]) == 0
    finally:
        await asyncio.gather(*(conn.close() for conn in conns))


async def test_a_database_ahead_of_the_code_is_refused(empty_db: asyncpg.Connection) -> None:
    await migrate(empty_db)
    await empty_db.execute(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')"
    )

    with pytest.raises(MigrationError, match="9999"):
        await migrate(empty_db)
    with pytest.raises(MigrationError, match="9999"):
        await pending_migrations(empty_db)
    assert await migration_lock_holders(empty_db) == 0


async def test_a_migration_changed_after_it_was_applied_is_refused(
    empty_db: asyncpg.Connection,
) -> None:
    await migrate(empty_db)
    first, *rest = bundled_migrations()
    edited = Migration(first.version, first.name, first.sql + "\n-- edited afterwards\n")
    newer = Migration(len(rest) + 2, "never_applied", "CREATE TABLE never_applied ()")

    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(empty_db, [edited, *rest, newer])
    assert await recorded(empty_db) == bundled_ledger()
    assert await migration_lock_holders(empty_db) == 0


async def test_a_recorded_checksum_that_differs_is_refused(empty_db: asyncpg.Connection) -> None:
    await migrate(empty_db)
    await empty_db.execute("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1")

    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(empty_db)


async def test_a_failing_migration_is_rolled_back_and_not_recorded(
    empty_db: asyncpg.Connection,
) -> None:
    known = bundled_migrations()
    broken = Migration(
        len(known) + 1, "broken", "CREATE TABLE half_done (); SELECT * FROM no_such_table"
    )

    with pytest.raises(asyncpg.UndefinedTableError):
        await migrate(empty_db, [*known, broken])

    assert await recorded(empty_db) == bundled_ledger()
    assert not await empty_db.fetchval("SELECT to_regclass('half_done') IS NOT NULL")
    assert await migration_lock_holders(empty_db) == 0
