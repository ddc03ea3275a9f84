"""Load generators: wrk (with bench/scenario.lua) when installed, else a small asyncio client.

Both keep `connections` HTTP/1.1 keep-alive connections busy for `seconds` and report the same
measurement. wrk runs one thread (-t1): on a 2-core machine shared with the service and
PostgreSQL, more load-generator threads only take CPU from what is being measured.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Final, Literal

import msgspec

from bench.scenarios import Requests, Scenario

Generator = Literal["wrk", "python", "pgbench"]
LUA: Final = Path(__file__).with_name("scenario.lua")


class Measurement(msgspec.Struct, frozen=True, kw_only=True):
    scenario: str
    connections: int
    generator: Generator
    seconds: float
    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    """Responses with status >= 400 (nothing else than 2xx is expected) plus socket errors."""
    statuses: dict[str, int] = msgspec.field(default_factory=dict)
    orders: int | None = None
    """Order rows in the table when the measurement started."""
    ceiling: str | None = None
    """The pgbench scenario this one is compared with, and the ratio of their rates."""
    ratio: float | None = None
    variant: str = "baseline"
    """The service configuration measured (bench/variants.py)."""
    service_cpu_ms: float | None = None
    """CPU of the service's processes per request (bench/cpu.py); None: not measured."""
    postgres_cpu_ms: float | None = None
    """CPU of PostgreSQL's processes per request; None: not measured (a server elsewhere)."""
    per_postgres_core: float | None = None
    """Requests per second one PostgreSQL core would carry at that cost: 1 / postgres_cpu."""


class _WrkReport(msgspec.Struct):
    requests: int
    duration_us: int
    p50_us: float
    p99_us: float
    status_errors: int
    connect: int
    read: int
    write: int
    timeout: int
    statuses: dict[str, int]


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def default_generator() -> Literal["wrk", "python"]:
    """wrk when installed, else the Python fallback."""
    return "wrk" if wrk_available() else "python"


def run_wrk(scenario: Scenario, base_url: str, connections: int, seconds: float) -> Measurement:
    env = {
        **os.environ,
        "BENCH_METHOD": scenario.method,
        "BENCH_PATH": scenario.path,
        "BENCH_KEYS": scenario.keys,
        "BENCH_PREFIX": f"wrk-{uuid.uuid4().hex[:12]}",
        "BENCH_SEED": str(random.getrandbits(31)),
        "BENCH_HEADERS": "\n".join(f"{name}: {value}" for name, value in scenario.headers.items()),
    }
    if scenario.body is not None:
        env["BENCH_BODY"] = scenario.body.decode()
    if scenario.key is not None:
        env["BENCH_KEY"] = scenario.key
    if scenario.paths_file is not None:
        env["BENCH_PATHS"] = str(scenario.paths_file)
        env["BENCH_PATHS_ONCE"] = "1" if scenario.paths == "once" else "0"
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    command += ["-s", str(LUA), base_url]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    line = next((x for x in completed.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    report = msgspec.json.decode(line.removeprefix("BENCH_RESULT "), type=_WrkReport)
    elapsed = report.duration_us / 1e6
    socket_errors = report.connect + report.read + report.write + report.timeout
    return Measurement(
        scenario=scenario.name,
        connections=connections,
        generator="wrk",
        seconds=elapsed,
        requests=report.requests,
        rate=report.requests / elapsed,
        p50_ms=report.p50_us / 1000,
        p99_ms=report.p99_us / 1000,
        errors=report.status_errors + socket_errors,
        statuses=report.statuses,
    )


# -- the Python fallback ----------------------------------------------------------------------


class _Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.socket_errors = 0


async def _read_status(reader: asyncio.StreamReader) -> int:
    """Read one response (Content-Length framed, as the service sends) and return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def _connection(
    host: str, port: int, requests: Requests, stop_at: float, tally: _Tally
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (started := time.perf_counter()) < stop_at:
            writer.write(requests.next())
            status = await _read_status(reader)
            tally.latencies.append(time.perf_counter() - started)
            tally.statuses[str(status)] = tally.statuses.get(str(status), 0) + 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        tally.socket_errors += 1
    finally:
        writer.close()


async def _drive(
    scenario: Scenario, host: str, port: int, connections: int, seconds: float
) -> _Tally:
    tally = _Tally()
    requests = Requests(scenario, f"{host}:{port}", f"py-{uuid.uuid4().hex[:12]}")
    stop_at = time.perf_counter() + seconds
    await asyncio.gather(
        *(_connection(host, port, requests, stop_at, tally) for _ in range(connections))
    )
    return tally


def run_python(scenario: Scenario, base_url: str, connections: int, seconds: float) -> Measurement:
    host, port = base_url.removeprefix("http://").rstrip("/").split(":")
    started = time.perf_counter()
    tally = asyncio.run(_drive(scenario, host, int(port), connections, seconds))
    elapsed = time.perf_counter() - started
    latencies = sorted(tally.latencies) or [0.0]
    not_ok = sum(n for status, n in tally.statuses.items() if not status.startswith("2"))
    return Measurement(
        scenario=scenario.name,
        connections=connections,
        generator="python",
        seconds=elapsed,
        requests=len(tally.latencies),
        rate=len(tally.latencies) / elapsed,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        errors=not_ok + tally.socket_errors,
        statuses=tally.statuses,
    )


def percentile(ordered: list[float], percent: float) -> float:
    """The nearest-rank percentile of an ascending, non-empty list."""
    rank = max(1, round(percent / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def run_load(
    generator: Literal["wrk", "python"],
    scenario: Scenario,
    base_url: str,
    connections: int,
    seconds: float,
) -> Measurement:
    runner = run_wrk if generator == "wrk" else run_python
    return runner(scenario, base_url, connections, seconds)
