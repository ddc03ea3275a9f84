"""The migration runner: applies each bundled file once, under a lock; accepts a database ahead
of the code (a newer release's expand-only migrations) and refuses one that disagrees with it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from orders.eventstore import MigrationError
from orders.eventstore.migrate import (
    LAST_IN_FIRST_LEDGER,
    MIGRATION_LOCK_ID,
    Migration,
    bundled_migrations,
    migrate,
    pending_migrations,
    schema_is_current,
)
from orders.eventstore.pool import create_pool
from tests.support.databases import DatabaseFactory, service_login

CONCURRENT_RUNNERS = 12


@pytest_asyncio.fixture(loop_scope="session")
async def empty_url(databases: DatabaseFactory) -> str:
    return await databases.create(migrated=False)


@pytest_asyncio.fixture(loop_scope="session")
async def empty_db(empty_url: str) -> AsyncIterator[asyncpg.Connection]:
    """The owner's connection to `empty_url`."""
    conn = await asyncpg.connect(empty_url)
    yield conn
    await conn.close()


async def recorded(
    conn: asyncpg.Connection, ledger: str | None = None
) -> list[tuple[int, str, str]]:
    """What one ledger holds, or both together when `ledger` is None."""
    ledgers = [ledger] if ledger else ["schema_migrations", "schema_migrations_since_0005"]
    rows = []
    for table in ledgers:
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
            rows += await conn.fetch(f"SELECT version, name, checksum FROM {table}")  # noqa: S608
    return sorted((row["version"], row["name"], row["checksum"]) for row in rows)


def with_a_newer_one(known: list[Migration], name: str = "newer") -> list[Migration]:
    """`known` and one migration after it, as a newer release would ship it."""
    table = f"made_by_{name}"
    return [*known, Migration(known[-1].version + 1, name, f"CREATE TABLE {table} ()")]


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


async def test_versions_up_to_0004_stay_in_the_ledger_older_releases_read_strictly(
    empty_db: asyncpg.Connection,
) -> None:
    shipped = with_a_newer_one(bundled_migrations())

    await migrate(empty_db, shipped)

    ledger = [(m.version, m.name, m.checksum) for m in shipped]
    first = [row for row in ledger if row[0] <= LAST_IN_FIRST_LEDGER]
    assert [version for version, *_ in first] == [1, 2, 3, 4]
    assert await recorded(empty_db, "schema_migrations") == first
    assert await recorded(empty_db, "schema_migrations_since_0005") == ledger[len(first) :]
    assert await pending_migrations(empty_db, shipped) == []


async def test_a_database_ahead_of_the_code_is_accepted_and_gets_nothing_applied(
    empty_db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    await migrate(empty_db, with_a_newer_one(bundled_migrations()))
    ledger = await recorded(empty_db)

    with caplog.at_level(logging.INFO, logger="orders.eventstore.migrate"):
        assert await migrate(empty_db) == []
    assert await recorded(empty_db) == ledger
    assert await pending_migrations(empty_db) == []
    newer = [r for r in caplog.records if r.getMessage().startswith("the database has migrations")]
    assert [getattr(r, "newer", None) for r in newer] == [[ledger[-1][0]]]
    assert await migration_lock_holders(empty_db) == 0


async def test_readiness_accepts_a_database_ahead_of_the_code(
    empty_db: asyncpg.Connection, empty_url: str
) -> None:
    await migrate(empty_db, with_a_newer_one(bundled_migrations()))

    pool = await create_pool(empty_url, size=1)
    try:
        assert await schema_is_current(pool)
    finally:
        await pool.close()


async def test_a_database_ahead_yet_lacking_a_known_migration_is_refused(
    empty_db: asyncpg.Connection,
) -> None:
    known = bundled_migrations()
    skipped, after = with_a_newer_one(with_a_newer_one(known, "skipped"), "after")[-2:]
    await migrate(empty_db, [*known, after])

    with pytest.raises(MigrationError, match="diverged"):
        await migrate(empty_db, [*known, skipped])
    with pytest.raises(MigrationError, match="diverged"):
        await pending_migrations(empty_db, [*known, skipped])
    assert await migration_lock_holders(empty_db) == 0


async def test_the_service_role_reads_the_ledgers_before_and_after_the_second_one_exists(
    empty_db: asyncpg.Connection, empty_url: str
) -> None:
    """`orders serve` migrates first, as the service role: with nothing to apply it only reads,
    on a database never migrated past 0004 (no second ledger) as on one migrated further."""
    known = bundled_migrations()
    up_to_0004 = known[:LAST_IN_FIRST_LEDGER]
    shipped = with_a_newer_one(known)
    await migrate(empty_db, up_to_0004)
    assert await empty_db.fetchval("SELECT to_regclass('schema_migrations_since_0005') IS NULL")

    async with service_login(empty_url) as service_url:
        service = await asyncpg.connect(service_url)
        try:
            assert await migrate(service, up_to_0004) == []
            await migrate(empty_db, shipped)
            assert await migrate(service, shipped) == []
            assert await pending_migrations(service, shipped) == []
        finally:
            await service.close()


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


def no_transaction(version: int, *statements: str) -> Migration:
    body = "\n".join(f"{statement};" for statement in statements)
    return Migration(version, "concurrent", f"-- orders: no transaction\n-- why\n{body}\n")


async def test_a_no_transaction_migration_builds_an_index_concurrently(
    empty_db: asyncpg.Connection,
) -> None:
    known = bundled_migrations()
    build = no_transaction(
        known[-1].version + 1,
        "DROP INDEX CONCURRENTLY IF EXISTS events_type_idx",
        "CREATE INDEX CONCURRENTLY events_type_idx ON events (event_type)",
    )

    await migrate(empty_db, [*known, build])

    assert await empty_db.fetchval(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_type_idx'::regclass"
    )
    assert (build.version, build.name, build.checksum) in await recorded(empty_db)


async def test_an_interrupted_concurrent_build_is_built_again_by_the_next_run(
    empty_db: asyncpg.Connection,
) -> None:
    known = bundled_migrations()
    await migrate(empty_db, known)
    await empty_db.execute("CREATE TABLE scratch (n integer)")
    await empty_db.execute("INSERT INTO scratch VALUES (1), (1)")
    build = no_transaction(
        known[-1].version + 1,
        "DROP INDEX CONCURRENTLY IF EXISTS scratch_n_key",
        "CREATE UNIQUE INDEX CONCURRENTLY scratch_n_key ON scratch (n)",
    )

    with pytest.raises(asyncpg.UniqueViolationError):
        await migrate(empty_db, [*known, build])
    # What a failed concurrent build leaves: an invalid index, and nothing recorded.
    assert not await empty_db.fetchval(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'scratch_n_key'::regclass"
    )
    assert await pending_migrations(empty_db, [*known, build]) == [build.version]

    await empty_db.execute("DELETE FROM scratch WHERE ctid = (SELECT min(ctid) FROM scratch)")
    assert await migrate(empty_db, [*known, build]) == [build.version]
    assert await empty_db.fetchval(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'scratch_n_key'::regclass"
    )
    assert await migration_lock_holders(empty_db) == 0


def test_a_no_transaction_migrations_statements_are_split_at_line_ends() -> None:
    migration = no_transaction(9, "SELECT 1", "COMMENT ON TABLE t IS 'a; b'")
    assert migration.statements() == [
        "-- orders: no transaction\n-- why\nSELECT 1",
        "COMMENT ON TABLE t IS 'a; b'",
    ]
    assert not migration.transactional
    assert all(m.transactional for m in bundled_migrations() if m.version != 8)
