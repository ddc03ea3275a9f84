"""The ASGI entry point uvicorn's worker processes import (`orders serve` sets the env)."""

from __future__ import annotations

import gc
import os

from litestar import Litestar

from orders.api.app import create_app
from orders.logs import configure_logging
from orders.settings import load_settings


def build() -> Litestar:
    """App factory for uvicorn: each worker builds its own app, and so its own pool."""
    settings = load_settings()
    configure_logging(settings.log_level)
    url = settings.database_url or os.environ["DATABASE_URL"]
    app = create_app(settings, url, shutdown_on_signals=True)
    # Everything built so far (modules, routes, schemas) lives as long as the process: moved
    # out of the collector's generations, it is no longer scanned by every full collection,
    # whose pauses otherwise land on whichever requests are in flight.
    gc.freeze()
    return app
