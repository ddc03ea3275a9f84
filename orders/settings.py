"""Service configuration, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

ProjectionMode = Literal["inline", "async"]


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str | None = None
    """`DATABASE_URL`: any PostgreSQL 13+; unset means the embedded server in `data_dir`."""

    data_dir: Path = Path(".orders")
    """`ORDERS_DATA_DIR`: where the embedded PostgreSQL keeps its cluster between runs."""

    pool_size: int = 10
    """`ORDERS_POOL_SIZE`: connections per worker process."""

    log_level: str = "INFO"
    """`ORDERS_LOG_LEVEL`: standard logging level name."""

    projection_mode: ProjectionMode = "inline"
    """`ORDERS_PROJECTION_MODE`: `inline` projects in the append transaction, `async` leaves it
    to `orders project`."""

    read_wait_seconds: float = 2.0
    """`ORDERS_READ_WAIT_SECONDS`: in async mode, how long a read waits for the projection to
    catch up before answering 503."""

    db_timeout_seconds: float = 5.0
    """`ORDERS_DB_TIMEOUT_SECONDS`: the longest a request waits for a connection or a statement
    before it fails fast with 503."""

    lock_timeout_ms: int = 2000
    """`ORDERS_LOCK_TIMEOUT_MS`: how long a duplicate waits on the winner's uncommitted append
    before it answers 409 with Retry-After."""

    replay_cache_size: int = 10_000
    """`ORDERS_REPLAY_CACHE_SIZE`: recorded outcomes each worker keeps in memory to answer
    retries without a database round trip (0: always ask the database)."""


_ENV_NAMES: dict[str, str] = {
    "database_url": "DATABASE_URL",
    "data_dir": "ORDERS_DATA_DIR",
    "pool_size": "ORDERS_POOL_SIZE",
    "log_level": "ORDERS_LOG_LEVEL",
    "projection_mode": "ORDERS_PROJECTION_MODE",
    "read_wait_seconds": "ORDERS_READ_WAIT_SECONDS",
    "db_timeout_seconds": "ORDERS_DB_TIMEOUT_SECONDS",
    "lock_timeout_ms": "ORDERS_LOCK_TIMEOUT_MS",
    "replay_cache_size": "ORDERS_REPLAY_CACHE_SIZE",
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from `environ` (default: the process environment).

    Empty variables count as unset. A value of the wrong type raises `SettingsError`
    naming the variable, so a misconfigured deployment fails at start, not on a request.
    """
    env = os.environ if environ is None else environ
    raw = {field: env[name] for field, name in _ENV_NAMES.items() if env.get(name)}
    try:
        settings = msgspec.convert(raw, Settings, strict=False, dec_hook=_decode_path)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid configuration: {_name_variable(str(exc))}") from exc
    if settings.pool_size < 1:
        raise SettingsError("ORDERS_POOL_SIZE must be at least 1")
    return settings


def _decode_path(type_: type, value: object) -> object:
    if type_ is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError


def _name_variable(message: str) -> str:
    """Say `ORDERS_POOL_SIZE` where msgspec says `$.pool_size`: users know the variable."""
    for field, name in _ENV_NAMES.items():
        message = message.replace(f"`$.{field}`", name)
    return message
