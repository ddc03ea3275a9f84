"""The API benchmark harness runs end to end on a fresh checkout: with wrk when it is installed,
else with its Python load generator, a variant beside the baseline, and the lifecycle's pays and
pay replays beside the creates and replays. Speed is not judged here, only that it measures."""

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
def test_benchmark_measures_creates_pays_and_the_ceilings_and_writes_its_results(
    tmp_path: Path,
) -> None:
    api.main(
        [
            "--seconds=1",
            "--connections=4",
            "--scenarios",
            "creates",
            "pays",
            "creates-again",
            "replays",
            "pay-replays",
            "--warmup-seconds=0.5",
            f"--output={tmp_path}",
        ],
        variants=[VARIANT],
    )

    report = msgspec.json.decode((tmp_path / "bench.json").read_bytes(), type=Report)
    assert report.generator in ("wrk", "python")
    assert [(r.scenario, r.connections, r.variant) for r in report.results] == [
        ("replays", 4, "baseline"),
        ("pay replays", 4, "baseline"),
        ("creates", 4, "baseline"),
        ("pays", 4, "baseline"),
        ("creates, again", 4, "baseline"),
        ("replays", 4, "smoke"),
        ("creates", 4, "smoke"),
    ]
    replays, pay_replays, creates, pays, again, _, variant = report.results
    for measured in report.results:
        assert measured.requests > 0
        assert measured.errors == 0
        assert measured.ratio is not None and measured.ratio > 0
        assert measured.service_cpu_ms and measured.postgres_cpu_ms is not None
    for writes in (creates, pays, again, variant):  # replays may never reach PostgreSQL
        assert writes.postgres_cpu_ms
        assert writes.per_postgres_core == pytest.approx(1000 / writes.postgres_cpu_ms)
    _, ratio = report.variants
    assert (ratio.variant, ratio.scenario, ratio.connections) == ("smoke", "creates", 4)
    assert ratio.ratio == pytest.approx(variant.rate / creates.rate)
    paid, replayed = report.lifecycle
    # Judged against the creates before and after it.
    assert (paid.scenario, paid.connections) == ("pays", 4)
    assert paid.compared_with == "creates and creates, again"
    assert paid.create_rates == [creates.rate, again.rate]
    assert paid.ratio == pytest.approx(2 * pays.rate / (creates.rate + again.rate))
    assert paid.p99_ms == pays.p99_ms
    assert paid.create_p99_ms == pytest.approx((creates.p99_ms + again.p99_ms) / 2)
    assert (replayed.scenario, replayed.compared_with) == ("pay replays", "replays")
    assert replayed.ratio == pytest.approx(pay_replays.rate / replays.rate)
    assert {t.name.split(":")[0] for t in report.targets} >= {"pays @4", "pay replays @4"}
    assert {(c.scenario, c.connections) for c in report.ceilings} == {
        ("pgbench INSERT", 4),
        ("pgbench SELECT", 4),
    }
    assert all(c.rate > 0 and c.errors == 0 and c.postgres_cpu_ms for c in report.ceilings)
    written = (tmp_path / "bench.md").read_text()
    assert "| smoke " in written and "| pay replays " in written
    assert (tmp_path / "bench.png").read_bytes().startswith(b"\x89PNG")
