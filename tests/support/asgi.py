"""httpx's transport over a Litestar app, in the test's own event loop."""

from __future__ import annotations

import httpx
from litestar import Litestar


def asgi_transport(app: Litestar) -> httpx.ASGITransport:
    """An httpx transport that calls `app` directly, as an ASGI server would.

    One protocol typed twice: httpx takes an app whose scope and events are plain mappings,
    Litestar's app takes its TypedDicts of them, so neither annotation accepts the other.
    """
    return httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # see the docstring
