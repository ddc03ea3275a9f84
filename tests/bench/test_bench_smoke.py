"""The API benchmark harness runs end to end on a fresh checkout: with wrk when it is installed,
else with its Python load generator, a variant beside the baseline. Speed is not judged here,
only that it measures."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from bench import api
from bench.report import Report
from bench.variants import Variant

VARIANT = Variant(
    "smoke", env={"ORDERS_REPLAY_CACHE_SIZE": "0"}, headers={"X-Bench-Variant": "smoke"}
)
"""Any configuration will do: what is checked is that it is measured and compared."""


@pytest.mark.slow
def test_benchmark_measures_creates_and_the_ceilings_and_writes_its_results(
    tmp_path: Path,
) -> None:
    api.main(
        [
            "--seconds=1",
            "--connections=4",
            "--scenarios=creates",
            "--warmup-seconds=0",
            f"--output={tmp_path}",
        ],
        variants=[VARIANT],
    )

    report = msgspec.json.decode((tmp_path / "bench.json").read_bytes(), type=Report)
    assert report.generator in ("wrk", "python")
    creates, variant = report.results
    assert (creates.scenario, creates.connections, creates.variant) == ("creates", 4, "baseline")
    assert (variant.scenario, variant.connections, variant.variant) == ("creates", 4, "smoke")
    for measured in (creates, variant):
        assert measured.requests > 0
        assert measured.errors == 0
        assert measured.ratio is not None and measured.ratio > 0
        assert measured.service_cpu_ms and measured.postgres_cpu_ms
        assert measured.per_postgres_core == pytest.approx(1000 / measured.postgres_cpu_ms)
    [ratio] = report.variants
    assert (ratio.variant, ratio.scenario, ratio.connections) == ("smoke", "creates", 4)
    assert ratio.ratio == pytest.approx(variant.rate / creates.rate)
    assert {(c.scenario, c.connections) for c in report.ceilings} == {
        ("pgbench INSERT", 4),
        ("pgbench SELECT", 4),
    }
    assert all(c.rate > 0 and c.errors == 0 and c.postgres_cpu_ms for c in report.ceilings)
    assert "| smoke " in (tmp_path / "bench.md").read_text()
    assert (tmp_path / "bench.png").read_bytes().startswith(b"\x89PNG")
