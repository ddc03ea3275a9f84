"""The composition root: the only place that knows every part of the service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin

import projections.orders
from orders.api.access_log import AccessLog
from orders.api.authentication import authenticator_for
from orders.api.errors import EXCEPTION_HANDLERS
from orders.api.events import read_events
from orders.api.health import HealthController
from orders.api.lifecycle import COMMAND_ROUTES, order_history
from orders.api.limits import HeaderLimitMiddleware
from orders.api.observability import (
    POOL_USE,
    ObservabilityMiddleware,
    count_batch,
    count_lifecycle_batch,
    metrics,
)
from orders.api.openapi import StructSchemaPlugin
from orders.api.orders import OrdersController
from orders.api.request_spans import RequestSpanMiddleware
from orders.api.security import security_schemes
from orders.api.services import Services, identify_caller
from orders.api.shutdown_signals import ShutdownSignals
from orders.create_order import OrderCreator
from orders.event_feed import EventFeed
from orders.eventstore import EventStore
from orders.eventstore.notify import AppendNotifier
from orders.eventstore.pool import create_pool
from orders.order_lifecycle import OrderLifecycle
from orders.readmodel import ReadModel
from orders.settings import Settings
from orders.tracing import Tracing, current_trace_id
from projections.consistency import ReadYourWrites


def create_app(
    settings: Settings,
    database_url: str,
    tracing: Tracing | None = None,
    *,
    shutdown_on_signals: bool = False,
) -> Litestar:
    """The HTTP application over the database at `database_url` (already migrated), traced as
    the OTEL_* environment says unless `tracing` is given. `shutdown_on_signals` (for the
    server process, `orders serve`): SIGTERM and SIGINT answer waiting long-polls at once,
    before the server waits for the requests in flight."""
    services = Services()
    tracing = tracing or Tracing.from_environment()
    tracer = tracing.tracer
    access_log = AccessLog(None if tracer is None else current_trace_id)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        services.authenticate = await authenticator_for(settings)
        access_log.start()
        pool = await create_pool(
            database_url,
            size=settings.pool_size,
            timeout_seconds=settings.db_timeout_seconds,
            lock_timeout_ms=settings.lock_timeout_ms,
            tracer=tracer,
        )
        POOL_USE.watch(pool)
        inline_mode = settings.projection_mode == "inline"
        # Every append notifies, in either mode: the feed's long-polls wait for it (and, in
        # async mode, the projector).
        notifier = AppendNotifier(database_url)
        notifier.start()
        inline = projections.orders.INLINE if inline_mode else ""
        store = EventStore(pool, notifier, replication_barrier=settings.replication_barrier)
        services.feed = EventFeed(store, database_url, poll_seconds=settings.feed_poll_seconds)
        services.events_source = settings.events_source
        signals = ShutdownSignals(services.feed.close)
        if shutdown_on_signals:
            signals.install()
        services.creator = OrderCreator(
            store,
            inline_projection=inline,
            remembered=settings.replay_cache_size,
            on_batch=count_batch,
        )
        read_your_writes = None
        if not inline_mode:
            read_your_writes = ReadYourWrites(
                pool,
                database_url,
                checkpoint_name=projections.orders.NAME,
                wait_seconds=settings.read_wait_seconds,
            )
            read_your_writes.start()
        services.read_model = ReadModel(pool, read_your_writes)
        services.lifecycle = OrderLifecycle(
            store,
            services.read_model,
            inline_projection=inline,
            remembered=settings.replay_cache_size,
            on_batch=count_lifecycle_batch,
        )
        try:
            yield
        finally:
            signals.uninstall()
            await services.feed.stop()
            if read_your_writes is not None:
                await read_your_writes.close()
            await notifier.stop()
            POOL_USE.forget(pool)
            await pool.close()
            await access_log.stop()
            await tracing.shutdown()

    components, security = security_schemes(settings)
    orders_routes = Router(
        path="/",
        route_handlers=[OrdersController, *COMMAND_ROUTES, order_history, read_events],
        security=security,
    )
    app = Litestar(
        route_handlers=[orders_routes, HealthController, metrics],
        lifespan=[lifespan],
        dependencies={
            # A chain, not siblings: Litestar resolves dependencies of one level together in
            # a task group (tens of microseconds a request); `caller` after `services` needs
            # none.
            "services": Provide(lambda: services, sync_to_thread=False),
            "caller": Provide(identify_caller),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        plugins=[StructSchemaPlugin()],
        middleware=[
            *([] if tracer is None else [DefineMiddleware(RequestSpanMiddleware, tracer=tracer)]),
            HeaderLimitMiddleware,
        ],
        openapi_config=OpenAPIConfig(
            title="orders",
            version="1.0.0",
            description="An event-sourced, idempotent order service. Errors are RFC 9457 "
            "problem details (application/problem+json) with a stable `type` per kind.",
            path="/schema",
            components=components,
            render_plugins=[JsonRenderPlugin(), SwaggerRenderPlugin()],
        ),
        logging_config=None,
        debug=False,
    )
    # Around the whole application, not among the middleware above: Litestar runs those only
    # for a request that matched a route, so a 404 for an unknown path or a 405 would be in
    # neither the metrics nor the request log (they count with the route "unmatched").
    app.asgi_handler = ObservabilityMiddleware(app.asgi_handler, access_log=access_log)
    return app
