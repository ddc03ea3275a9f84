"""What the routes use, built when the app starts: one object, so that one dependency hands it
over."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from orders.api.authentication import Authenticator
from orders.create_order import OrderCreator
from orders.domain.callers import Caller
from orders.event_feed import EventFeed
from orders.order_lifecycle import OrderLifecycle
from orders.readmodel import ReadModel


class Services:
    """Set by the app's lifespan before the first request (see `orders.api.app`)."""

    authenticate: Authenticator
    creator: OrderCreator
    feed: EventFeed
    events_source: str
    """The CloudEvents `source` of the feed's events (`ORDERS_EVENTS_SOURCE`)."""
    lifecycle: OrderLifecycle
    read_model: ReadModel


async def identify_caller(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> Caller:
    """The `caller` dependency: who is calling, as the configured authenticator says (it
    raises the 401 when no one is)."""
    return await services.authenticate(request)
