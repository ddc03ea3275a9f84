"""The feed benchmark runs end to end with short durations: every probe's create is delivered
by the long-poll, and both notify rates are measured. Speed is not judged here."""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import pytest

from bench import feed


@pytest.mark.slow
def test_the_feed_benchmark_measures_delivery_and_the_notify_cost(tmp_path: Path) -> None:
    output = tmp_path / "feed.json"

    feed.main(["--seconds=2", "--connections=4", "--probes-per-second=20", f"--output={output}"])

    result = msgspec.json.decode(output.read_bytes(), type=feed.Result)
    delivery, cost = result.delivery, result.notify_cost
    assert delivery.creates.requests > 0 and delivery.creates.errors == 0
    assert delivery.probes > 0 and delivery.delivered == delivery.probes
    assert delivery.events_read >= delivery.probes
    assert delivery.p50_ms <= delivery.p99_ms <= delivery.max_ms
    assert cost.with_notify_per_second > 0 and cost.without_notify_per_second > 0
    assert math.isclose(cost.ratio, cost.with_notify_per_second / cost.without_notify_per_second)
