"""The `orders` command: serve, migrate, project, publish, rebuild."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from types import FrameType

from orders.database import EmbeddedPostgresMissing, database_url, migrate_database
from orders.eventstore import EventStoreError
from orders.logs import configure_logging
from orders.settings import Settings, SettingsError, load_settings
from orders.tracing import exporting

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

    project = commands.add_parser(
        "project", help="run the async projection's catch-up worker (one of many leads)"
    )
    project.add_argument(
        "--batch", type=_positive, default=500, help="events per transaction (default 500)"
    )
    project.add_argument(
        "--poll-seconds",
        type=float,
        default=0.5,
        help="check for events this often when no notification comes (default 0.5)",
    )
    project.add_argument(
        "--metrics-port",
        type=int,
        default=9101,
        help="serve Prometheus metrics (lag, leadership) on this port; 0: off (default 9101)",
    )
    project.set_defaults(run=_project)

    publish = commands.add_parser(
        "publish",
        help="publish every event to RabbitMQ at ORDERS_AMQP_URL (one of many leads)",
    )
    publish.add_argument(
        "--batch",
        type=_positive,
        default=500,
        help="events per batch, confirmed as a whole before the checkpoint moves (default 500)",
    )
    publish.add_argument(
        "--poll-seconds",
        type=float,
        default=0.5,
        help="check for events this often when no notification comes (default 0.5)",
    )
    publish.add_argument(
        "--linger-seconds",
        type=float,
        default=0.05,
        help="when caught up, gather events this long after a batch before the next "
        "(fewer, larger batches; default 0.05)",
    )
    publish.add_argument(
        "--metrics-port",
        type=int,
        default=9102,
        help="serve /metrics and /healthz on this port; 0: off (default 9102)",
    )
    publish.set_defaults(run=_publish)

    rebuild = commands.add_parser(
        "rebuild", help="rebuild a read model from all events and swap it in, writes going on"
    )
    rebuild.add_argument("--projection", choices=["orders"], default="orders")
    rebuild.add_argument(
        "--batch", type=_positive, default=5000, help="events per transaction (default 5000)"
    )
    rebuild.set_defaults(run=_rebuild)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        # Here, not only in each worker's app: uvicorn would restart a failing worker forever.
        exporting()
    except SettingsError as exc:
        print(f"orders: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    run: Callable[[argparse.Namespace, Settings], int] = args.run
    try:
        return run(args, settings)
    except EmbeddedPostgresMissing as exc:
        print(f"orders: {exc}", file=sys.stderr)
        return 2
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
    # uvicorn re-raises the SIGTERM it handled once it has drained; ours then unwinds the
    # `with` below, so the embedded PostgreSQL is stopped cleanly too.
    signal.signal(signal.SIGTERM, _interrupt)
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


def _project(args: argparse.Namespace, settings: Settings) -> int:
    from prometheus_client import start_http_server

    from projections.worker import Projector

    async def run(url: str) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            # Finish the batch in hand (it commits or not as a whole), then leave.
            loop.add_signal_handler(signum, stop.set)
        projector = Projector(url, batch_size=args.batch, poll_seconds=args.poll_seconds)
        await projector.run(stop)

    with database_url(settings) as url:
        asyncio.run(migrate_database(url))
        if args.metrics_port:
            start_http_server(args.metrics_port)
        asyncio.run(run(url))
    return 0


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    from orders.publishing import health
    from orders.publishing.publisher import Publisher

    if not settings.amqp_url:
        print("orders publish: set ORDERS_AMQP_URL (e.g. amqp://user:pass@host/)", file=sys.stderr)
        return 2

    async def run(url: str, amqp_url: str) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            # Finish the batch in hand (confirmed and checkpointed, or not), then leave.
            loop.add_signal_handler(signum, stop.set)
        publisher = Publisher(
            url,
            amqp_url,
            settings.amqp_exchange,
            source=settings.events_source,
            confirm_timeout=settings.amqp_confirm_timeout_seconds,
            batch_size=args.batch,
            poll_seconds=args.poll_seconds,
            linger_seconds=args.linger_seconds,
            replication_barrier=settings.replication_barrier,
        )
        if args.metrics_port:
            health.serve(args.metrics_port, publisher.heartbeat)
        await publisher.run(stop)

    with database_url(settings) as url:
        asyncio.run(migrate_database(url))
        asyncio.run(run(url, settings.amqp_url))
    return 0


def _rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from projections.progress import ProgressLine
    from projections.rebuild import RebuildRunning, SwapBlocked, rebuild

    signal.signal(signal.SIGTERM, _interrupt)
    with database_url(settings) as url:
        asyncio.run(migrate_database(url))
        progress = ProgressLine(sys.stderr, f"rebuild {args.projection}")
        try:
            summary = asyncio.run(
                rebuild(
                    url, batch_size=args.batch, progress=progress if sys.stderr.isatty() else None
                )
            )
        except (RebuildRunning, SwapBlocked) as exc:
            print(f"orders rebuild: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(
                "orders rebuild: interrupted; the live tables are untouched, run it again",
                file=sys.stderr,
            )
            return 130
        finally:
            progress.close()
    rate = summary.events / summary.seconds if summary.seconds else 0.0
    print(
        f"rebuilt {args.projection}: {summary.events:,} events in {summary.seconds:.1f} s "
        f"({rate:,.0f} events/s), swapped in at attempt {summary.swap_attempts}"
    )
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends a command as Ctrl-C does: a rebuild's transaction rolls back and nothing
    is swapped; `serve` has drained its requests by then and stops what it started."""
    raise KeyboardInterrupt
