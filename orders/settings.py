"""Service configuration, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

from orders.domain.callers import RoleNames
from orders.eventstore.store import BarrierMode

ProjectionMode = Literal["inline", "async"]
AuthMode = Literal["none", "jwt", "gateway"]

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""What `ORDERS_JWT_ALGORITHMS` may list: signatures only a private key can make. (HS256 and
friends are refused: a verifier holding the secret could forge tokens, and the classic attack
signs an HS256 token with the public key as the secret.)"""


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

    replication_barrier: BarrierMode = "auto"
    """`ORDERS_REPLICATION_BARRIER`: whether an answer given from an event this process did not
    itself commit first waits until the synchronous standbys hold it (see
    `EventStore.ensure_replicated`). `auto`: whenever the server has `synchronous_standby_names`
    set, as it says at each statement; `always`: even without (tests, benchmarks); `off`: never
    (an acknowledged replay may then be lost in a failover)."""

    auth: AuthMode = "none"
    """`ORDERS_AUTH`: how the caller is known. `none`: one anonymous caller; `jwt`: a bearer
    token's `sub`; `gateway`: a header set by a trusted gateway in front."""

    jwt_jwks_url: str | None = None
    """`ORDERS_JWT_JWKS_URL`: where the token signing keys are (https://, http:// or file://),
    fetched at start and again when a token names a key id not seen yet."""

    jwt_public_key: str | None = None
    """`ORDERS_JWT_PUBLIC_KEY`: instead of a JWKS, one PEM public key (the PEM text itself, or
    the path of a file holding it)."""

    jwt_issuer: str | None = None
    """`ORDERS_JWT_ISSUER`: the `iss` every token must carry (required with `jwt`)."""

    jwt_audience: str | None = None
    """`ORDERS_JWT_AUDIENCE`: an `aud` every token must carry (required with `jwt`)."""

    jwt_algorithms: str = "RS256,PS256,ES256,EdDSA"
    """`ORDERS_JWT_ALGORITHMS`: the signature algorithms accepted, comma-separated; asymmetric
    ones only."""

    jwt_leeway_seconds: float = 30.0
    """`ORDERS_JWT_LEEWAY_SECONDS`: clock skew allowed when checking `exp`, `nbf` and `iat`."""

    auth_header: str = "X-User-Id"
    """`ORDERS_AUTH_HEADER`: with `gateway`, the header the gateway puts the caller's id in."""

    auth_roles_header: str = "X-User-Roles"
    """`ORDERS_AUTH_ROLES_HEADER`: with `gateway`, the header the gateway puts the caller's
    roles in (comma- or space-separated)."""

    admin_role: str = "orders:admin"
    """`ORDERS_ADMIN_ROLE`: the role that may read every caller's orders and do anything to
    them: in a token's `scope` (or `scp`) or `roles` claim, or in the gateway's roles header."""

    fulfilment_role: str = "orders:fulfilment"
    """`ORDERS_FULFILMENT_ROLE`: the role that reads every order and may pay, ship, deliver
    and cancel it, from the same claims and header as the admin role."""

    events_role: str = "orders:events"
    """`ORDERS_EVENTS_ROLE`: the role that reads the event feed (`GET /api/v1/events`), from
    the same claims and header as the admin role."""

    events_source: str = "/orders"
    """`ORDERS_EVENTS_SOURCE`: the CloudEvents `source` of every event the service sends."""

    feed_poll_seconds: float = 1.0
    """`ORDERS_FEED_POLL_SECONDS`: how often a waiting long-poll of the event feed reads the
    store again when no notification has woken it (a notification wakes it at once)."""

    amqp_url: str | None = None
    """`ORDERS_AMQP_URL`: the RabbitMQ `orders publish` publishes to (amqp:// or amqps://);
    required by that command only."""

    amqp_exchange: str = "orders"
    """`ORDERS_AMQP_EXCHANGE`: the durable topic exchange `orders publish` declares and
    publishes to; unroutable messages go to `<exchange>.unrouted`."""

    amqp_confirm_timeout_seconds: float = 10.0
    """`ORDERS_AMQP_CONFIRM_TIMEOUT_SECONDS`: how long a batch may wait for the broker's
    confirms (and a connection attempt for the broker) before it is retried."""

    @property
    def role_names(self) -> RoleNames:
        return RoleNames(
            admin=self.admin_role, fulfilment=self.fulfilment_role, events=self.events_role
        )

    @property
    def jwt_algorithm_list(self) -> list[str]:
        return [name.strip() for name in self.jwt_algorithms.split(",") if name.strip()]


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
    "replication_barrier": "ORDERS_REPLICATION_BARRIER",
    "auth": "ORDERS_AUTH",
    "jwt_jwks_url": "ORDERS_JWT_JWKS_URL",
    "jwt_public_key": "ORDERS_JWT_PUBLIC_KEY",
    "jwt_issuer": "ORDERS_JWT_ISSUER",
    "jwt_audience": "ORDERS_JWT_AUDIENCE",
    "jwt_algorithms": "ORDERS_JWT_ALGORITHMS",
    "jwt_leeway_seconds": "ORDERS_JWT_LEEWAY_SECONDS",
    "auth_header": "ORDERS_AUTH_HEADER",
    "auth_roles_header": "ORDERS_AUTH_ROLES_HEADER",
    "admin_role": "ORDERS_ADMIN_ROLE",
    "fulfilment_role": "ORDERS_FULFILMENT_ROLE",
    "events_role": "ORDERS_EVENTS_ROLE",
    "events_source": "ORDERS_EVENTS_SOURCE",
    "feed_poll_seconds": "ORDERS_FEED_POLL_SECONDS",
    "amqp_url": "ORDERS_AMQP_URL",
    "amqp_exchange": "ORDERS_AMQP_EXCHANGE",
    "amqp_confirm_timeout_seconds": "ORDERS_AMQP_CONFIRM_TIMEOUT_SECONDS",
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
    if not settings.feed_poll_seconds > 0:
        raise SettingsError("ORDERS_FEED_POLL_SECONDS must be more than 0")
    if settings.amqp_confirm_timeout_seconds <= 0:
        raise SettingsError("ORDERS_AMQP_CONFIRM_TIMEOUT_SECONDS must be above 0")
    if settings.auth == "jwt":
        _check_jwt(settings)
    return settings


def _check_jwt(settings: Settings) -> None:
    """With `ORDERS_AUTH=jwt`, a missing or unsafe part fails the start, not a request."""
    if (settings.jwt_jwks_url is None) == (settings.jwt_public_key is None):
        raise SettingsError(
            "ORDERS_AUTH=jwt needs exactly one of ORDERS_JWT_JWKS_URL and ORDERS_JWT_PUBLIC_KEY"
        )
    if settings.jwt_issuer is None or settings.jwt_audience is None:
        raise SettingsError("ORDERS_AUTH=jwt needs ORDERS_JWT_ISSUER and ORDERS_JWT_AUDIENCE")
    algorithms = settings.jwt_algorithm_list
    unsafe = sorted(set(algorithms) - ASYMMETRIC_ALGORITHMS)
    if not algorithms or unsafe:
        raise SettingsError(
            f"ORDERS_JWT_ALGORITHMS may list only {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}"
            + (f"; not {', '.join(unsafe)}" if unsafe else "")
        )


def _decode_path(type_: type, value: object) -> object:
    if type_ is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError


def _name_variable(message: str) -> str:
    """Say `ORDERS_POOL_SIZE` where msgspec says `$.pool_size`: users know the variable."""
    for field, name in _ENV_NAMES.items():
        message = message.replace(f"`$.{field}`", name)
    return message
