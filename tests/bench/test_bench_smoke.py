"""The API benchmark harness runs end to end on a fresh checkout: with wrk when it is installed,
else with its Python load generator. Speed is not judged here, only that it measures."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from bench import api
from bench.report import Report


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
        ]
    )

    report = msgspec.json.decode((tmp_path / "bench.json").read_bytes(), type=Report)
    assert report.generator in ("wrk", "python")
    [creates] = report.results
    assert (creates.scenario, creates.connections) == ("creates", 4)
    assert creates.requests > 0
    assert creates.errors == 0
    assert creates.ratio is not None and creates.ratio > 0
    assert {(c.scenario, c.connections) for c in report.ceilings} == {
        ("pgbench INSERT", 4),
        ("pgbench SELECT", 4),
    }
    assert all(c.rate > 0 and c.errors == 0 for c in report.ceilings)
    assert (tmp_path / "bench.png").read_bytes().startswith(b"\x89PNG")
