"""The async projector's lag under a create load: `orders serve --workers 2` in async mode takes
creates for a while, one `orders project` keeps up, and the lag (events after the checkpoint,
and the age of the oldest of them) is sampled every few milliseconds meanwhile.

    .venv/bin/python -m bench.projector_lag [--seconds 15] [--connections 32]

Uses DATABASE_URL when set, else an embedded PostgreSQL in a fresh temporary directory. Load
comes from wrk when installed, else from the Python generator of bench.load. Prints the figures
and writes bench/results/projector_lag.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import msgspec

from bench import scenarios
from bench.load import Measurement, default_generator, percentile, run_load
from bench.report import save_json
from bench.service import orders_command, postgres, serve
from orders.database import migrate_database
from orders.eventstore.pool import connect
from projections import catchup

RESULTS: Final = Path(__file__).parent / "results" / "projector_lag.json"
SAMPLE_EVERY_SECONDS: Final = 0.01


class Result(msgspec.Struct, frozen=True):
    creates: Measurement
    samples: int
    lag_events_p50: float
    lag_events_p99: float
    lag_events_max: int
    lag_ms_p50: float
    lag_ms_p99: float
    lag_ms_max: float


@contextmanager
def projector(url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "DATABASE_URL": url}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*orders_command(), "project", "--metrics-port", "0"], env=env, stdout=sink, stderr=sink
        )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(30)


async def sample_lag(url: str, stop: asyncio.Event) -> list[catchup.Lag]:
    conn = await connect(url, application_name="bench-lag")
    samples: list[catchup.Lag] = []
    try:
        while not stop.is_set():
            samples.append(await catchup.lag(conn, "orders"))
            await asyncio.sleep(SAMPLE_EVERY_SECONDS)
    finally:
        await conn.close()
    return samples


async def measure(url: str, base_url: str, connections: int, seconds: float) -> Result:
    generator = default_generator()
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_lag(url, stop))
    try:
        creates = await asyncio.to_thread(
            run_load, generator, scenarios.creates(), base_url, connections, seconds
        )
    finally:
        stop.set()
    samples = await sampler
    events = sorted(float(s.events) for s in samples)
    millis = sorted(s.seconds * 1000 for s in samples)
    return Result(
        creates=creates,
        samples=len(samples),
        lag_events_p50=percentile(events, 50),
        lag_events_p99=percentile(events, 99),
        lag_events_max=int(events[-1]),
        lag_ms_p50=percentile(millis, 50),
        lag_ms_p99=percentile(millis, 99),
        lag_ms_max=millis[-1],
    )


def run(seconds: float, connections: int) -> Result:
    os.environ["ORDERS_PROJECTION_MODE"] = "async"  # for the service processes started below
    with (
        postgres(os.environ.get("DATABASE_URL")) as (url, _),
        tempfile.TemporaryDirectory(prefix="bench-lag-") as scratch,
    ):
        asyncio.run(migrate_database(url))
        logs = Path(scratch)
        with (
            serve(url, workers=2, pool_size=8, log=logs / "serve.log") as service,
            projector(url, logs / "project.log"),
        ):
            return asyncio.run(measure(url, service.base_url, connections, seconds))


def render(result: Result) -> str:
    c = result.creates
    return "\n".join(
        [
            f"creates: {c.rate:,.0f}/s over {c.seconds:.1f} s ({c.generator}, {c.connections} "
            f"connections), p99 {c.p99_ms:.1f} ms, {c.errors} errors",
            f"projector lag over {result.samples} samples:",
            f"  events: p50 {result.lag_events_p50:.0f}, p99 {result.lag_events_p99:.0f}, "
            f"max {result.lag_events_max}",
            f"  ms:     p50 {result.lag_ms_p50:.1f}, p99 {result.lag_ms_p99:.1f}, "
            f"max {result.lag_ms_max:.1f}",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    result = run(args.seconds, args.connections)
    print(render(result))
    save_json(RESULTS, result)


if __name__ == "__main__":
    main()
