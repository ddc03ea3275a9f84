"""From a create's answer to a consumer's delivery of its event, whatever the delivery path.

A `LatencyProbe` creates orders of its own at a steady pace beside the main load, noting when
each answer arrived (by order id); a consumer of any path (the broker, the feed's long-poll)
calls `delivered(order_id)` as each OrderCreated reaches it. Both run in this process, on one
monotonic clock. Only the probe's orders are measured: the load's are counted by the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import httpx
import msgspec

from bench import scenarios
from bench.load import percentile


class Latency(msgspec.Struct, frozen=True):
    probes: int
    delivered: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class LatencyProbe:
    """Creates one order every `every_seconds` against `base_url` until stopped."""

    def __init__(self, base_url: str, every_seconds: float = 0.02) -> None:
        self._base_url = base_url
        self._every_seconds = every_seconds
        self._answered: dict[str, float] = {}
        self._delivered: dict[str, float] = {}
        self._awaited: set[str] = set()
        self._settled = asyncio.Event()

    def answered(self, order_id: str) -> None:
        """Note that the create of `order_id`, one of the probe's, was answered now."""
        self._answered[order_id] = time.monotonic()

    def delivered(self, order_id: str) -> None:
        """Note that the consumer got the creation of `order_id` (any order: only the probe's
        count)."""
        if order_id not in self._delivered:
            self._delivered[order_id] = time.monotonic()
            self._awaited.discard(order_id)
            if not self._awaited:
                self._settled.set()

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self._base_url, timeout=10) as client:
            while not stop.is_set():
                started = time.monotonic()
                answer = await client.post(
                    scenarios.ORDERS,
                    content=scenarios.BODY,
                    headers={
                        "Content-Type": "application/json",
                        "Idempotency-Key": f'"probe-{uuid.uuid4()}"',
                    },
                )
                if answer.status_code == 201:
                    self.answered(answer.json()["order_id"])
                await asyncio.sleep(max(0.0, self._every_seconds - (time.monotonic() - started)))

    async def settle(self, within: float = 10.0) -> None:
        """Wait (at most `within` seconds) until every probe's creation was delivered."""
        self._awaited = set(self._answered) - set(self._delivered)
        if self._awaited:
            # Set by any delivery while nothing was awaited yet (the whole run until now).
            self._settled.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), within)

    def latency(self) -> Latency:
        millis = sorted(
            (self._delivered[o] - at) * 1000
            for o, at in self._answered.items()
            if o in self._delivered
        )
        if not millis:
            return Latency(len(self._answered), 0, float("nan"), float("nan"), float("nan"))
        return Latency(
            probes=len(self._answered),
            delivered=len(millis),
            p50_ms=percentile(millis, 50),
            p99_ms=percentile(millis, 99),
            max_ms=millis[-1],
        )
