"""bench.growth runs end to end at a tiny size: creates on an empty store, a load with SQL,
creates again on the fuller store, one report. Speed is not judged here, only that it
measures (the real run loads 5 million events)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from bench import growth

EVENTS = 2000


@pytest.mark.slow
def test_growth_measures_creates_before_and_after_loading_events(tmp_path: Path) -> None:
    growth.main(
        [
            f"--events={EVENTS}",
            "--seconds=1",
            "--connections=4",
            "--warmup-seconds=0",
            f"--output={tmp_path}",
        ]
    )

    report = msgspec.json.decode((tmp_path / "growth.json").read_bytes(), type=growth.Growth)
    assert report.events_loaded == EVENTS and report.load_seconds > 0
    [empty], [full] = report.empty, report.full
    for measured in (empty, full):
        assert measured.connections == 4
        assert measured.requests > 0 and measured.errors == 0
        assert measured.service_cpu_ms and measured.postgres_cpu_ms
    assert empty.orders is not None and full.orders is not None
    assert full.orders >= empty.orders + empty.requests + EVENTS
    assert [t.name for t in report.targets] == [
        "creates @4: rate full / rate empty",
        "errors",
    ]
    assert "| full " in (tmp_path / "growth.md").read_text()
