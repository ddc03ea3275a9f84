"""Limits on a request that apply before any route looks at it."""

from __future__ import annotations

from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from orders.api.problems import HEADERS_TOO_LARGE, ProblemError

MAX_HEADER_BYTES: Final = 32 * 1024
"""Far above any honest request (a key is at most 255 characters), and still small enough that
headers cannot be used to make each request expensive. The HTTP server itself may accept
much more (uvicorn with httptools sets no limit)."""


class HeaderLimitMiddleware:
    """Refuses a request whose headers together exceed MAX_HEADER_BYTES (431)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            size = sum(len(name) + len(value) for name, value in scope["headers"])
            if size > MAX_HEADER_BYTES:
                raise ProblemError(
                    HEADERS_TOO_LARGE,
                    f"the request's headers total {size} bytes; at most {MAX_HEADER_BYTES} "
                    "are accepted",
                )
        await self.app(scope, receive, send)
