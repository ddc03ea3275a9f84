"""The `orders` command: serve, migrate, project, rebuild."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence

from orders.database import database_url, migrate_database
from orders.eventstore import EventStoreError
from orders.logs import configure_logging
from orders.settings import Settings, SettingsError, load_settings

log = logging.getLogger("orders")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orders", description="An event-sourced, idempotent order service."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP service (migrates first)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes, each with its own connection pool (default 1)",
    )
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(run=_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"orders: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    run: Callable[[argparse.Namespace, Settings], int] = args.run
    try:
        return run(args, settings)
    except (EventStoreError, OSError) as exc:
        log.error("%s failed: %s", args.command, exc)
        return 1
    except KeyboardInterrupt:
        return 130


def _migrate(_: argparse.Namespace, settings: Settings) -> int:
    with database_url(settings) as url:
        applied = asyncio.run(migrate_database(url))
    print(f"applied migrations: {applied}" if applied else "the database is up to date")
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    if args.workers < 1:
        print("orders: --workers must be at least 1", file=sys.stderr)
        return 2
    with database_url(settings) as url:
        asyncio.run(migrate_database(url))
        # Worker processes read their settings from the environment: hand them the database
        # actually in use (the embedded one has no DATABASE_URL of its own).
        os.environ["DATABASE_URL"] = url
        with tempfile.TemporaryDirectory(prefix="orders-metrics-") as metrics_dir:
            if args.workers > 1:
                # Each worker counts in its own files here; /metrics sums them all.
                os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
            uvicorn.run(
                "orders.api.asgi:build",
                factory=True,
                host=args.host,
                port=args.port,
                workers=args.workers,
                log_config=None,
                access_log=False,
                backlog=4096,
                timeout_graceful_shutdown=20,
            )
    return 0
