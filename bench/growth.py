"""Does a create cost the same on a full store as on an empty one? Creates with random-UUID keys
(each lands anywhere in the key index, as clients' keys do) against `orders serve` on an empty
store, then again once it holds `--events` OrderCreated events, loaded with SQL: copies of an
order recorded by the service's own create path, projected by the real inline projection
(bench.seed.bulk_load), into the real schema with every index in place.

    .venv/bin/python -m bench.growth [--events 5000000] [--seconds 10] [--connections 64]

Uses DATABASE_URL when set, else an embedded PostgreSQL in a fresh temporary directory.
Prints the report (Markdown) and writes bench/results/growth.json and growth.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path
from typing import Final, Literal

import msgspec

from bench import scenarios, seed
from bench.api import add_run_arguments, chosen_generator
from bench.load import Measurement
from bench.report import Target, checklist, number, save_json, table, write_text
from bench.service import postgres, serve
from bench.session import migrated_session

EVENTS: Final = 5_000_000
SHARE: Final = 0.8
"""The target: creates on the full store at no less than this share of the empty store's rate."""


class Growth(msgspec.Struct, kw_only=True):
    generator: str
    seconds: float
    workers: int
    pool_size: int
    events_loaded: int
    load_seconds: float
    """Appending, projecting, checkpointing and vacuuming the loaded events."""
    empty: list[Measurement]
    full: list[Measurement]
    targets: list[Target]


def targets(empty: list[Measurement], full: list[Measurement]) -> list[Target]:
    """At each connection count: the full store's create rate as a share of the empty one's."""
    found = []
    for before, after in zip(empty, full, strict=True):
        ratio = after.rate / before.rate if before.rate else 0.0
        name = f"creates @{before.connections}: rate full / rate empty"
        found.append(Target(name, ratio, f">= {SHARE}", ratio >= SHARE))
    errors = sum(m.errors for m in [*empty, *full])
    found.append(Target("errors", errors, "== 0", errors == 0))
    return found


def run(
    *,
    events: int,
    seconds: float,
    levels: list[int],
    generator: Literal["wrk", "python"],
    workers: int,
    pool_size: int,
    warmup_seconds: float,
) -> Growth:
    with (
        postgres(os.environ.get("DATABASE_URL")) as (database_url, _),
        tempfile.TemporaryDirectory(prefix="bench-growth-") as scratch,
    ):
        session = migrated_session(
            database_url,
            generator=generator,
            levels=levels,
            seconds=seconds,
            warmup_seconds=warmup_seconds,
        )
        log = Path(scratch) / "serve.log"
        creates = scenarios.creates(keys="uuid")
        with serve(database_url, workers=workers, pool_size=pool_size, log=log) as service:
            empty = session.measure(service, creates)
            print(f"loading {events:,} events ...", flush=True)
            load_seconds = asyncio.run(seed.bulk_load(database_url, events))
            full = session.measure(service, creates)
    return Growth(
        generator=generator,
        seconds=seconds,
        workers=workers,
        pool_size=pool_size,
        events_loaded=events,
        load_seconds=load_seconds,
        empty=empty,
        full=full,
        targets=targets(empty, full),
    )


def render(growth: Growth) -> str:
    rows = [
        [
            store,
            str(m.connections),
            number(m.orders, 0),
            number(m.rate, 0),
            number(m.p50_ms, 2),
            number(m.p99_ms, 2),
            str(m.errors),
            number(m.service_cpu_ms, 3),
            number(m.postgres_cpu_ms, 3),
        ]
        for store, measured in (("empty", growth.empty), ("full", growth.full))
        for m in measured
    ]
    header = ["store", "conns", "orders", "creates/s", "p50 ms", "p99 ms", "errors"]
    header += ["service CPU ms/create", "PostgreSQL CPU ms/create"]
    return "\n\n".join(
        [
            f"creates with random-UUID keys, {growth.generator}, {growth.seconds:g} s per run, "
            f"{growth.workers} workers x pool {growth.pool_size}; loaded "
            f"{growth.events_loaded:,} events with SQL in {growth.load_seconds:,.0f} s",
            table(header, rows),
            checklist(growth.targets),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Creates on an empty and on a full store.")
    add_run_arguments(parser)
    parser.add_argument("--connections", type=int, nargs="+", default=[64])
    parser.add_argument("--events", type=int, default=EVENTS, help="how many to load")
    args = parser.parse_args(argv)
    growth = run(
        events=args.events,
        seconds=args.seconds,
        levels=args.connections,
        generator=chosen_generator(args),
        workers=args.workers,
        pool_size=args.pool_size,
        warmup_seconds=args.warmup_seconds,
    )
    summary = render(growth)
    print(summary)
    save_json(args.output / "growth.json", growth)
    write_text(summary, args.output / "growth.md")


if __name__ == "__main__":
    main()
