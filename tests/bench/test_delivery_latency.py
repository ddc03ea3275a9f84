"""The delivery-latency probe waits, once the load has stopped, for the probes still on their
way, however many were delivered while it ran."""

from __future__ import annotations

import asyncio

from bench.delivery_latency import LatencyProbe


async def test_settle_waits_for_the_probes_still_undelivered() -> None:
    probe = LatencyProbe("http://127.0.0.1:9")  # never run: the probes are noted by hand
    for order_id in ("a", "b", "c"):
        probe.answered(order_id)
    probe.delivered("a")  # while the load ran
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, probe.delivered, "b")
    loop.call_later(0.1, probe.delivered, "c")

    await probe.settle(within=10)

    latency = probe.latency()
    assert (latency.probes, latency.delivered) == (3, 3)


async def test_settle_gives_up_after_its_time() -> None:
    probe = LatencyProbe("http://127.0.0.1:9")
    probe.answered("lost")

    await probe.settle(within=0.05)

    assert (probe.latency().probes, probe.latency().delivered) == (1, 0)
