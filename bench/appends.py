"""Single-event appends per second through EventStore.append, next to pgbench doing the same
one-row INSERT into a table of the same shape on the same server.

    .venv/bin/python -m bench.appends [--seconds 10] [--connections 16 64] [--processes 2]

Uses DATABASE_URL when set (its database is migrated), else an embedded PostgreSQL in a
temporary directory. Prints a table and writes bench/results/appends.json.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import msgspec

from bench.report import save_json
from bench.service import postgres
from orders.eventstore import NO_STREAM, EventStore, NewEvent, sql
from orders.eventstore.migrate import migrate
from orders.eventstore.pool import connect, create_pool

RESULTS = Path(__file__).parent / "results" / "appends.json"
PGBENCH_INSERT = "pgbench INSERT"
PGBENCH_APPEND = "pgbench APPEND sql"

# Shaped like an OrderCreated event, so row and index sizes match what the service writes.
DATA = msgspec.json.encode(
    {
        "order_id": "0b6f3c1e-6f0e-4bb8-9d47-5a4f3d2b1c00",
        "products": [{"sku": "SKU-000123", "quantity": 2, "unit_price": 1999}],
        "shipping_to": "Jane Doe, 1 Main Street, 12345 Springfield",
        "total": 3998,
    }
)
METADATA = b'{"request_id": "bench"}'

PGBENCH_TABLE = """
CREATE TABLE IF NOT EXISTS bench_rows (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id text    NOT NULL,
    version   integer NOT NULL,
    data      jsonb   NOT NULL,
    UNIQUE (stream_id, version)
)
"""


class Result(msgspec.Struct, frozen=True):
    scenario: str
    connections: int
    processes: int
    seconds: float
    count: int
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    client_cpu_seconds: float | None = None
    """CPU the Python client spent (near `seconds` per process means the client is the limit)."""
    ratio_to_pgbench: float | None = None


# -- EventStore.append ------------------------------------------------------------------------


async def _append_worker(
    store: EventStore, stop_at: float, latencies: list[float], prefix: str
) -> None:
    events = [NewEvent("OrderCreated", DATA, METADATA)]
    n = 0
    while time.perf_counter() < stop_at:
        n += 1
        started = time.perf_counter()
        await store.append(f"{prefix}-{n}", events, NO_STREAM)
        latencies.append(time.perf_counter() - started)


async def _append_for(url: str, connections: int, seconds: float) -> list[float]:
    """Latencies of every append `connections` concurrent writers completed in `seconds`."""
    pool = await create_pool(url, size=connections, application_name="bench")
    try:
        store = EventStore(pool)
        await store.append(f"warmup-{uuid.uuid4()}", [NewEvent("Warmup", b"{}")], NO_STREAM)
        latencies: list[float] = []
        stop_at = time.perf_counter() + seconds
        prefix = f"bench-{uuid.uuid4()}"
        await asyncio.gather(
            *(
                _append_worker(store, stop_at, latencies, f"{prefix}-{w}")
                for w in range(connections)
            )
        )
        return latencies
    finally:
        await pool.close()


def _append_process(url: str, connections: int, seconds: float) -> tuple[list[float], float]:
    """The latencies, and the CPU seconds this client process spent getting them."""
    cpu = time.process_time()
    latencies = asyncio.run(_append_for(url, connections, seconds))
    return latencies, time.process_time() - cpu


def bench_appends(url: str, connections: int, seconds: float, processes: int) -> Result:
    """Run `connections` appenders split over `processes` client processes."""
    if processes == 1:
        parts = [_append_process(url, connections, seconds)]
    else:
        shares = [
            connections // processes + (i < connections % processes) for i in range(processes)
        ]
        with multiprocessing.get_context("spawn").Pool(processes) as workers:
            parts = workers.starmap(_append_process, [(url, n, seconds) for n in shares])
    latencies = [latency for part, _ in parts for latency in part]
    return Result(
        scenario="EventStore.append",
        connections=connections,
        processes=processes,
        seconds=seconds,
        count=len(latencies),
        rate=len(latencies) / seconds,
        p50_ms=_percentile_ms(latencies, 50),
        p99_ms=_percentile_ms(latencies, 99),
        client_cpu_seconds=sum(cpu for _, cpu in parts),
    )


def _percentile_ms(latencies: list[float], percent: int) -> float | None:
    if len(latencies) < 2:
        return None
    return statistics.quantiles(latencies, n=100, method="inclusive")[percent - 1] * 1000


# -- pgbench ----------------------------------------------------------------------------------


def _literal(value: bytes) -> str:
    return "'" + value.decode().replace("'", "''") + "'"


# A new stream per transaction, as the appends above use.
_STREAM_ID = "('pgbench-' || :client_id || '-' || :n)"


def pgbench_scripts(directory: Path) -> dict[str, Path]:
    """pgbench scripts by scenario: the plain one-row INSERT (the baseline), and the store's own
    APPEND statement with literal arguments (the server's cost of an append, no Python)."""
    # Built from this module's constants, for pgbench: nothing from outside reaches it.
    insert = (
        "INSERT INTO bench_rows (stream_id, version, data) "  # noqa: S608
        f"VALUES ({_STREAM_ID}, 1, {_literal(DATA)})"
    )
    append = (
        sql.APPEND.format(then="")
        .replace("$1", _STREAM_ID)
        .replace("$2", "0")
        .replace("$3", "ARRAY['OrderCreated']")
        .replace("$4", f"ARRAY[{_literal(DATA)}::jsonb]")
        .replace("$5", f"ARRAY[{_literal(METADATA)}::jsonb]")
    )
    scripts: dict[str, Path] = {}
    for scenario, statement in ((PGBENCH_INSERT, insert), (PGBENCH_APPEND, append)):
        path = directory / f"{len(scripts)}.sql"
        # pgbench reads one statement up to the semicolon, so it has to be on one logical line.
        body = " ".join(statement.split())
        path.write_text(f"\\set n random(1, 9000000000000000000)\n{body};\n", encoding="utf-8")
        scripts[scenario] = path
    return scripts


def bench_pgbench(
    bin_dir: Path, url: str, scenario: str, script: Path, connections: int, seconds: float
) -> Result:
    command = [
        str(bin_dir / "pgbench"),
        "-n",
        "-c",
        str(connections),
        "-j",
        "2",
        "-T",
        str(max(1, round(seconds))),
        "-r",
        "-f",
        str(script),
        "--log",
        f"--log-prefix={script.parent / 'log'}",
        url,
    ]
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    latencies = _pgbench_latencies(script.parent, "log")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", completed.stdout)
    if tps is None:
        raise RuntimeError(f"unexpected pgbench output:\n{completed.stdout}")
    return Result(
        scenario=scenario,
        connections=connections,
        processes=1,
        seconds=seconds,
        count=len(latencies),
        rate=float(tps[1]),
        p50_ms=_percentile_ms(latencies, 50),
        p99_ms=_percentile_ms(latencies, 99),
    )


def _pgbench_latencies(directory: Path, prefix: str) -> list[float]:
    """Per-transaction latencies (seconds) from pgbench's logs (the third field, in µs)."""
    latencies: list[float] = []
    for log in directory.glob(f"{prefix}.*"):
        for line in log.read_text(encoding="utf-8").splitlines():
            latencies.append(int(line.split()[2]) / 1_000_000)
        log.unlink()
    return latencies


# -- the run ----------------------------------------------------------------------------------


async def prepare(url: str) -> None:
    conn = await connect(url, application_name="bench")
    try:
        await migrate(conn)
        await conn.execute(PGBENCH_TABLE)
    finally:
        await conn.close()


def run(seconds: float, levels: list[int], processes: int) -> list[Result]:
    results: list[Result] = []
    with (
        postgres(os.environ.get("DATABASE_URL")) as (url, bin_dir),
        tempfile.TemporaryDirectory() as scratch,
    ):
        asyncio.run(prepare(url))
        scripts = pgbench_scripts(Path(scratch))
        for connections in levels:
            baseline = bench_pgbench(
                bin_dir, url, PGBENCH_INSERT, scripts[PGBENCH_INSERT], connections, seconds
            )
            level = [
                baseline,
                bench_pgbench(
                    bin_dir, url, PGBENCH_APPEND, scripts[PGBENCH_APPEND], connections, seconds
                ),
                bench_appends(url, connections, seconds, processes),
            ]
            results += [
                msgspec.structs.replace(r, ratio_to_pgbench=r.rate / baseline.rate) for r in level
            ]
    return results


def render(results: list[Result]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    lines = [
        f"{'scenario':<20} {'conns':>5} {'procs':>5} {'rate/s':>10} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'vs pgbench':>10} {'client cpu':>10}"
    ]
    for r in results:
        ratio = "-" if r.ratio_to_pgbench is None else f"{r.ratio_to_pgbench:.2f}"
        cpu = "-" if r.client_cpu_seconds is None else f"{r.client_cpu_seconds:.1f} s"
        lines.append(
            f"{r.scenario:<20} {r.connections:>5} {r.processes:>5} {r.rate:>10.0f} "
            f"{ms(r.p50_ms):>8} {ms(r.p99_ms):>8} {ratio:>10} {cpu:>10}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="per level (default 10)")
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument(
        "--processes", type=int, default=1, help="client processes for the appends (default 1)"
    )
    args = parser.parse_args(argv)
    results = run(args.seconds, args.connections, args.processes)
    print(render(results))
    save_json(RESULTS, results)


if __name__ == "__main__":
    main()
