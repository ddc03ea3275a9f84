"""Telling the application that the server is shutting down while requests are in flight.

On SIGTERM or SIGINT uvicorn stops accepting connections and waits (up to its graceful timeout)
for the requests in flight; only then does the application's lifespan end. Nothing in ASGI
tells a running request, so a long-poll would hold the shutdown back for as long as it waits,
or be cut off at the timeout. So `orders serve` puts a handler of its own before uvicorn's:
it runs `on_signal` in the event loop, then the handler that was there.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Final

SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)

_Handler = Callable[[int, FrameType | None], object]


class ShutdownSignals:
    def __init__(self, on_signal: Callable[[], None]) -> None:
        self._on_signal = on_signal
        self._installed: dict[int, tuple[_Handler, object]] = {}

    def install(self) -> None:
        """Chain the handler before the current ones (signals are the main thread's only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for signum in SIGNALS:
            previous = signal.getsignal(signum)

            def handler(number: int, frame: FrameType | None, previous: object = previous) -> None:
                loop.call_soon_threadsafe(self._on_signal)
                _chain(previous, number, frame)

            signal.signal(signum, handler)
            self._installed[signum] = (handler, previous)

    def uninstall(self) -> None:
        """Put back the handlers found, unless someone has replaced ours since."""
        for signum, (handler, previous) in self._installed.items():
            if signal.getsignal(signum) is handler:
                signal.signal(signum, previous)  # type: ignore[arg-type]
        self._installed.clear()


def _chain(previous: object, signum: int, frame: FrameType | None) -> None:
    """Do what the signal did before our handler came."""
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
