"""What the feed tests share: reading a page, following `Link: rel="next"`, a fresh service."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, NamedTuple
from urllib.parse import parse_qs, urlsplit

import httpx
from litestar import Litestar

from orders.api.app import create_app
from orders.settings import Settings
from tests.api.conftest import running
from tests.support.asgi import asgi_transport

EVENTS: Final = "/api/v1/events"
BATCH_JSON: Final = "application/cloudevents-batch+json"
_NEXT = re.compile(r'<([^>]*)>; rel="next"')


class Page(NamedTuple):
    events: list[dict[str, Any]]
    next: str
    """The `Link: rel="next"` target."""

    @property
    def cursor(self) -> str:
        [after] = parse_qs(urlsplit(self.next).query)["after"]
        return after


def page_of(answer: httpx.Response) -> Page:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == BATCH_JSON
    link = _NEXT.fullmatch(answer.headers["link"])
    assert link is not None, answer.headers["link"]
    events = answer.json()
    assert isinstance(events, list)
    return Page(events, link[1])


async def read_page(
    client: httpx.AsyncClient, query: str = "", headers: dict[str, str] | None = None
) -> Page:
    return page_of(await client.get(f"{EVENTS}{query}", headers=headers))


async def read_to_the_end(
    client: httpx.AsyncClient, first: str = EVENTS, headers: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], Page]:
    """Every event from `first` on, following each page's next link until a page is empty;
    and that last (empty) page."""
    events: list[dict[str, Any]] = []
    page = page_of(await client.get(first, headers=headers))
    while page.events:
        events.extend(page.events)
        page = page_of(await client.get(page.next, headers=headers))
    return events, page


@asynccontextmanager
async def service(
    database_url: str, settings: Settings | None = None
) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    """The app started on `database_url`, and a client of it (fresh: its own listener)."""
    app = create_app(settings or Settings(pool_size=4), database_url)
    transport = asgi_transport(app)
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as client,
    ):
        yield app, client
