"""The event feed: every order's events as CloudEvents, a page at a time, with long-polling.

The same CloudEvents, with the same ids, that `orders publish` sends to the broker (one
function makes both, `orders.publishing.cloudevents.cloud_event`), in the store's gap-free
read order. Each answer's `Link: rel="next"` continues after its last event, or from the same
place when the page is empty. Checks in RFC 9110's order: identity (401), permission (403),
then the parameters (400).
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from orders.api import problems
from orders.api.feed_query import FeedQuery, encode_cursor, parse_feed_query
from orders.api.openapi import EventFeedOperation
from orders.api.problems import ProblemError, problem_spec
from orders.api.services import Services
from orders.domain.callers import Caller
from orders.eventstore import Position
from orders.publishing.cloudevents import (
    BATCH_CONTENT_TYPE,
    CloudEvent,
    cloud_event,
    encode_batch,
)

EVENTS_PATH: Final = "/api/v1/events"


def _next_link(place: Position, asked: FeedQuery) -> str:
    query: dict[str, str | int] = {"after": encode_cursor(place), "limit": asked.limit}
    if asked.wait_seconds:
        query["wait"] = asked.wait_seconds
    return f'<{EVENTS_PATH}?{urlencode(query)}>; rel="next"'


@get(
    EVENTS_PATH,
    summary="Every order's events as CloudEvents, in store order, a page at a time",
    description="Admins and the events role (ORDERS_EVENTS_ROLE) only; with ORDERS_AUTH=none, "
    'everyone. Follow `Link: rel="next"` to go on; it is there on every page, an empty one '
    "too. Dedupe by `id` (a re-read carries the same ids, the broker's too) and order each "
    "order's events by `sequence`.",
    tags=["events"],
    operation_class=EventFeedOperation,
    responses={
        200: ResponseSpec(
            list[CloudEvent],
            description="The events after the cursor (maybe none), a JSON array of CloudEvents",
            media_type=BATCH_CONTENT_TYPE,
        ),
        400: problem_spec("A malformed cursor, limit or wait; see `detail`"),
        401: problem_spec(
            "No valid identity (ORDERS_AUTH jwt or gateway). `WWW-Authenticate` says what to send"
        ),
        403: problem_spec("The caller has neither the events role nor the admin role"),
        503: problem_spec("The database is unavailable; retry after Retry-After seconds"),
    },
)
async def read_events(
    request: Request[Any, Any, Any],
    caller: NamedDependency[Caller],
    services: NamedDependency[Services],
) -> Response[bytes]:
    if not caller.reads_events:
        raise ProblemError(
            problems.FORBIDDEN, "reading the event feed needs the events role or the admin role"
        )
    asked = parse_feed_query(request.query_params)
    page = await services.feed.page(asked.after, asked.limit, asked.wait_seconds)
    source = services.events_source
    return Response(
        encode_batch(cloud_event(recorded, source=source) for recorded in page.events),
        media_type=BATCH_CONTENT_TYPE,
        headers={"Link": _next_link(page.next, asked)},
    )
