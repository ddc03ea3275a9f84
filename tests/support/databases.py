"""Test databases: one migrated template per session, a fresh copy of it per test module."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from orders.embedded import EmbeddedPostgres
from orders.eventstore.migrate import migrate


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` instead (host, user and query kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def as_user(url: str, user: str, password: str) -> str:
    """`url` logging in as `user` instead (host, database and query kept)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


@asynccontextmanager
async def service_login(owner_url: str) -> AsyncIterator[str]:
    """The URL of a new login role granted `orders_service` (migration 0004) and nothing else,
    as the README asks the service to run; the role is dropped afterwards."""
    login = f"orders_app_{secrets.token_hex(4)}"
    password = f"pw-{secrets.token_hex(8)}"
    owner = await asyncpg.connect(owner_url)
    try:
        await owner.execute(
            f"CREATE ROLE {login} LOGIN PASSWORD '{password}' IN ROLE orders_service"
        )
        yield as_user(owner_url, login, password)
    finally:
        await owner.execute(f"DROP ROLE IF EXISTS {login}")
        await owner.close()


@contextmanager
def test_server(external_url: str | None) -> Iterator[str]:
    """The server the tests use: `external_url` if given, else a throw-away embedded one."""
    if external_url:
        yield external_url
        return
    data_dir = Path(tempfile.mkdtemp(prefix="orders-test-"))
    try:
        with EmbeddedPostgres(data_dir / "pg") as server:
            yield server.url
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


class DatabaseFactory:
    """Creates databases on one server, each a copy of a template migrated once."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.template = f"orders_template_{secrets.token_hex(4)}"
        self._created: list[str] = []

    async def prepare(self) -> None:
        await self._admin(f'CREATE DATABASE "{self.template}"')
        conn = await asyncpg.connect(with_database(self.server_url, self.template))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    async def create(self, *, migrated: bool = True) -> str:
        """A new database's URL: migrated (a template copy) or empty."""
        name = f"orders_test_{secrets.token_hex(6)}"
        template = f' TEMPLATE "{self.template}"' if migrated else ""
        await self._admin(f'CREATE DATABASE "{name}"{template}')
        self._created.append(name)
        return with_database(self.server_url, name)

    async def drop_all(self) -> None:
        for name in [*self._created, self.template]:
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _admin(self, statement: str) -> None:
        conn = await asyncpg.connect(with_database(self.server_url, "postgres"))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()
