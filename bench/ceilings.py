"""pgbench ceilings on the server under test: what PostgreSQL alone does per second.

INSERT: one row per transaction into a copy of `events` (same columns, defaults, primary key,
unique (stream_id, version) and (tx_id, position) index), with the data of a real
OrderCreated and a new stream id each time. SELECT: one row of that table by primary key.
Both use prepared statements (-M prepared), as asyncpg does.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Final

import asyncpg

from bench.cpu import CpuMeter
from bench.load import Measurement, percentile
from bench.seed import order_created_data
from orders.eventstore.pool import connect

# LIKE ... INCLUDING ALL copies indexes, constraints, identity and defaults (not triggers).
CREATE_TABLE: Final = "CREATE TABLE IF NOT EXISTS bench_ceiling_events (LIKE events INCLUDING ALL)"
INSERT_SCRIPT: Final = """\\set n random(1, 9000000000000000000)
INSERT INTO bench_ceiling_events (stream_id, version, event_type, data)
VALUES ('pgbench-' || :client_id || '-' || :n, 1, 'OrderCreated', :data::jsonb);
"""
SELECT_SCRIPT: Final = """\\set p random(1, :rows)
SELECT stream_id, version, event_type, data, metadata FROM bench_ceiling_events WHERE position = :p;
"""


async def prepare(url: str) -> None:
    conn = await connect(url, application_name="bench")
    try:
        await conn.execute(CREATE_TABLE)
    finally:
        await conn.close()


async def row_count(url: str) -> int:
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        rows: int = await conn.fetchval(
            "SELECT coalesce(max(position), 0) FROM bench_ceiling_events"
        )
        return rows
    finally:
        await conn.close()


def pgbench(
    bin_dir: Path,
    url: str,
    name: str,
    script: str,
    variables: dict[str, str],
    clients: int,
    seconds: float,
) -> Measurement:
    """Run `script` with `clients` clients on 2 threads; latencies from pgbench's log."""
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as scratch:
        directory = Path(scratch)
        (directory / "script.sql").write_text(script, encoding="utf-8")
        command = [str(bin_dir / "pgbench"), "-n", "-M", "prepared", "-c", str(clients)]
        command += [
            "-j",
            "2",
            "-T",
            str(max(1, round(seconds))),
            "-f",
            str(directory / "script.sql"),
        ]
        command += ["--log", f"--log-prefix={directory / 'tx'}"]
        for variable, value in variables.items():
            command += ["-D", f"{variable}={value}"]
        completed = subprocess.run([*command, url], capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"pgbench failed:\n{completed.stdout}\n{completed.stderr}")
        tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", completed.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", completed.stdout)
        if tps is None:
            raise RuntimeError(f"unexpected pgbench output:\n{completed.stdout}")
        latencies = sorted(
            int(line.split()[2]) / 1e6
            for log in directory.glob("tx.*")
            for line in log.read_text(encoding="utf-8").splitlines()
        ) or [0.0]
    return Measurement(
        scenario=name,
        connections=clients,
        generator="pgbench",
        seconds=seconds,
        requests=len(latencies),
        rate=float(tps[1]),
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        errors=int(failed[1]) if failed else 0,
    )


def run_ceilings(
    bin_dir: Path, url: str, levels: list[int], seconds: float, meter: CpuMeter
) -> tuple[dict[int, Measurement], dict[int, Measurement]]:
    """The INSERT and SELECT ceilings at each client count, with PostgreSQL's CPU per
    transaction (INSERTs first: they fill the table the SELECTs read)."""
    documents = {"data": order_created_data().decode()}

    def measure(name: str, script: str, variables: dict[str, str], n: int) -> Measurement:
        return meter.measure(lambda: pgbench(bin_dir, url, name, script, variables, n, seconds))

    inserts = {n: measure("pgbench INSERT", INSERT_SCRIPT, documents, n) for n in levels}
    rows = {"rows": str(asyncio.run(row_count(url)))}
    selects = {n: measure("pgbench SELECT", SELECT_SCRIPT, rows, n) for n in levels}
    return inserts, selects
