"""The API benchmark: every scenario of issue 7 against `orders serve`, next to pgbench's
ceilings on the same PostgreSQL, in one run.

    .venv/bin/python -m bench.api [--seconds 10] [--connections 16 64] [--scenarios ...]

BENCH_SECONDS sets the default duration, BENCH_POOL_SIZE the connections per worker. Uses
DATABASE_URL when set, else an embedded PostgreSQL in a fresh temporary directory. Load comes
from wrk when installed (`make bench` installs it), else from a Python fallback generator.
Writes bench/results/bench.json and bench/results/bench.png.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal

import msgspec

from bench import ceilings, scenarios, seed
from bench.load import Measurement, default_generator, run_load
from bench.report import Report, render, targets, write_chart, write_json
from bench.scenarios import Scenario
from bench.service import Service, postgres, serve
from orders.database import migrate_database

RESULTS: Final = Path(__file__).parent / "results"
SEEDED_ORDERS: Final = 1000
LARGE_TABLE: Final = 1_000_000

# Two workers on two cores: PostgreSQL gets no more than ~2 busy backends per core anyway, and
# a worker (one event loop) keeps only a few queries in flight, so 8 per worker (16 in all)
# leaves the database a queue to work from without hundreds of idle backends; requests beyond
# it wait in the pool, which is cheaper than waiting inside PostgreSQL.
DEFAULT_POOL_SIZE: Final = 8


class Fixtures:
    """What the scenarios refer to, made once the service is up."""

    def __init__(self, replay_key: str, paths_file: Path) -> None:
        self.replay_key = replay_key
        self.paths_file = paths_file


PLAN: Final[dict[str, Callable[[Fixtures], Scenario]]] = {
    "count-1k": lambda _: scenarios.count("1k"),
    "get": lambda f: scenarios.get_order(f.paths_file),
    "list": lambda _: scenarios.list_page(),
    "replays": lambda f: scenarios.replays(f.replay_key),
    "creates": lambda _: scenarios.creates(),
    "mixed": lambda _: scenarios.mixed(),
    "count-1m": lambda _: scenarios.count("1M"),
}
"""In the order they run: the small-table reads first, then the writes, then the bulk load
that `count-1m` needs."""


def prepare_fixtures(service: Service, database_url: str, scratch: Path) -> Fixtures:
    keys = [f"seed-{uuid.uuid4().hex}" for _ in range(SEEDED_ORDERS)]
    asyncio.run(seed.create_orders(service.base_url, keys))
    paths = asyncio.run(seed.order_paths(database_url, SEEDED_ORDERS))
    paths_file = scratch / "order-paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    return Fixtures(replay_key=keys[0], paths_file=paths_file)


def _commit() -> str | None:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return completed.stdout.strip()


def run(
    *,
    seconds: float,
    levels: list[int],
    names: list[str],
    generator: Literal["wrk", "python"],
    workers: int,
    pool_size: int,
    warmup_seconds: float,
    large_table: int = LARGE_TABLE,
) -> Report:
    results: list[Measurement] = []
    bulk_seconds: float | None = None
    with (
        postgres(os.environ.get("DATABASE_URL")) as (database_url, bin_dir),
        tempfile.TemporaryDirectory(prefix="bench-api-") as scratch,
    ):
        asyncio.run(migrate_database(database_url))
        asyncio.run(ceilings.prepare(database_url))
        log = Path(scratch) / "serve.log"
        with serve(database_url, workers=workers, pool_size=pool_size, log=log) as service:
            fixtures = prepare_fixtures(service, database_url, Path(scratch))
            print("pgbench ceilings ...", flush=True)
            inserts, selects = ceilings.run_ceilings(bin_dir, database_url, levels, seconds)
            for name in names:
                if name == "count-1m":
                    missing = large_table - asyncio.run(seed.order_count(database_url))
                    print(f"bulk-loading {max(0, missing):,} orders ...", flush=True)
                    bulk_seconds = asyncio.run(seed.bulk_load(database_url, max(0, missing)))
                scenario = PLAN[name](fixtures)
                if warmup_seconds > 0:
                    run_load(generator, scenario, service.base_url, levels[0], warmup_seconds)
                for level in levels:
                    orders = asyncio.run(seed.order_count(database_url))
                    measured = run_load(generator, scenario, service.base_url, level, seconds)
                    ceiling = (inserts if scenario.ceiling == "insert" else selects)[level]
                    results.append(
                        msgspec.structs.replace(
                            measured,
                            orders=orders,
                            ceiling=ceiling.scenario,
                            ratio=measured.rate / ceiling.rate if ceiling.rate else None,
                        )
                    )
                    print(
                        f"  {scenario.name} @{level}: {measured.rate:.0f}/s, "
                        f"p99 {measured.p99_ms:.1f} ms, {measured.errors} errors",
                        flush=True,
                    )
    return Report(
        generator=generator,
        seconds=seconds,
        workers=workers,
        pool_size=pool_size,
        commit=_commit(),
        results=results,
        ceilings=[*inserts.values(), *selects.values()],
        targets=targets(results),
        bulk_load_seconds=bulk_seconds,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The orders API benchmark (issue 7).")
    parser.add_argument(
        "--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "10"))
    )
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--scenarios", nargs="+", choices=list(PLAN), default=list(PLAN))
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--pool-size",
        type=int,
        default=int(os.environ.get("BENCH_POOL_SIZE", DEFAULT_POOL_SIZE)),
        help="ORDERS_POOL_SIZE: connections per worker",
    )
    parser.add_argument("--warmup-seconds", type=float, default=2.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    generator: Literal["wrk", "python"] = args.generator
    if args.generator == "auto":
        generator = default_generator()
    if generator == "wrk":
        print("load generator: wrk -t1 with bench/scenario.lua (one thread: 2 cores are shared)")
    else:
        print(
            "load generator: the Python asyncio fallback (wrk is not installed); it needs more "
            "CPU per request than wrk, so rates here understate the service"
        )
    report = run(
        seconds=args.seconds,
        levels=args.connections,
        names=[name for name in PLAN if name in args.scenarios],
        generator=generator,
        workers=args.workers,
        pool_size=args.pool_size,
        warmup_seconds=args.warmup_seconds,
    )
    print(render(report))
    write_json(report, args.output / "bench.json")
    write_chart(report, args.output / "bench.png")
    print(f"written: {args.output / 'bench.json'}, {args.output / 'bench.png'}")


if __name__ == "__main__":
    main()
