"""The rebuild's rate in events/s, beside its ceiling: one statement that runs the same
projection SQL over every event at once (INSERT ... SELECT ... FROM events, no batches, no
checkpoint, no swap), on the same server in the same run.

    .venv/bin/python -m bench.rebuild [--events 200000] [--batch 1000 5000 20000]

Uses DATABASE_URL when set, else an embedded PostgreSQL in a fresh temporary directory.
Prints a table and writes bench/results/rebuild.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Final

import msgspec

from bench import seed
from bench.report import save_json
from bench.service import postgres
from orders.database import migrate_database
from orders.eventstore.pool import connect
from projections.orders import LIVE, Tables, apply_sql
from projections.rebuild import rebuild

RESULTS: Final = Path(__file__).parent / "results" / "rebuild.json"
CEILING_TABLES: Final = Tables(*(f"{live}_ceiling" for live in LIVE))

# Every event through the projection in one statement: the fastest the transformation goes.
_ALL_AT_ONCE = """
WITH new_events AS (SELECT * FROM events){apply}
SELECT 1
"""


class Result(msgspec.Struct, frozen=True):
    scenario: str
    events: int
    batch: int | None
    seconds: float
    rate: float
    ratio_to_ceiling: float | None = None


async def ceiling(url: str, events: int) -> Result:
    conn = await connect(url, application_name="bench-rebuild")
    try:
        for table, live in zip(CEILING_TABLES, LIVE, strict=True):
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
            await conn.execute(f"CREATE TABLE {table} (LIKE {live} INCLUDING ALL)")
        started = time.perf_counter()
        await conn.execute(_ALL_AT_ONCE.format(apply=apply_sql(CEILING_TABLES)))
        seconds = time.perf_counter() - started
        await conn.execute(f"DROP TABLE {', '.join(CEILING_TABLES)}")
    finally:
        await conn.close()
    return Result("one INSERT ... SELECT", events, None, seconds, events / seconds)


async def rebuilt(url: str, batch: int) -> Result:
    summary = await rebuild(url, batch_size=batch)
    rate = summary.events / summary.seconds
    return Result("orders rebuild", summary.events, batch, summary.seconds, rate)


def run(events: int, batches: list[int]) -> list[Result]:
    with postgres(os.environ.get("DATABASE_URL")) as (url, _):
        asyncio.run(migrate_database(url))
        missing = events - asyncio.run(seed.order_count(url))
        if missing > 0:
            print(f"loading {missing:,} events ...", file=sys.stderr, flush=True)
            asyncio.run(seed.bulk_load(url, missing, report=False))
        asyncio.run(ceiling(url, events))  # a warm-up: the measured runs find a warm cache
        results = [asyncio.run(rebuilt(url, batch)) for batch in batches]
        top = asyncio.run(ceiling(url, events))
    return [msgspec.structs.replace(r, ratio_to_ceiling=r.rate / top.rate) for r in results] + [
        msgspec.structs.replace(top, ratio_to_ceiling=1.0)
    ]


def render(results: list[Result]) -> str:
    lines = [
        f"{'scenario':<24} {'batch':>7} {'events':>9} {'seconds':>8} {'events/s':>10} {'vs':>6}"
    ]
    for r in results:
        batch = "-" if r.batch is None else str(r.batch)
        ratio = "-" if r.ratio_to_ceiling is None else f"{r.ratio_to_ceiling:.2f}"
        lines.append(
            f"{r.scenario:<24} {batch:>7} {r.events:>9,} {r.seconds:>8.2f} {r.rate:>10,.0f} "
            f"{ratio:>6}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[1000, 5000, 20000])
    args = parser.parse_args(argv)
    results = run(args.events, args.batch)
    print(render(results))
    save_json(RESULTS, results)


if __name__ == "__main__":
    main()
