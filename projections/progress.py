"""A one-line progress display for long jobs on a terminal: done of total, rate, ETA."""

from __future__ import annotations

import time
from typing import TextIO


class ProgressLine:
    """Rewrites one line on `stream` (a terminal) at most every `every_seconds`."""

    def __init__(self, stream: TextIO, label: str, every_seconds: float = 0.2) -> None:
        self._stream = stream
        self._label = label
        self._every = every_seconds
        self._started = time.monotonic()
        self._shown = 0.0
        self._dirty = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._shown < self._every:
            return
        self._shown = now
        elapsed = max(now - self._started, 1e-9)
        rate = done / elapsed
        total = max(total, done)
        eta = f"{(total - done) / rate:.0f} s" if rate > 0 else "?"
        self._stream.write(
            f"\r{self._label}: {done:,} of {total:,} events, {rate:,.0f} events/s, ETA {eta}  "
        )
        self._stream.flush()
        self._dirty = True

    def close(self) -> None:
        """End the line, so that what follows starts on a fresh one."""
        if self._dirty:
            self._stream.write("\n")
            self._stream.flush()
