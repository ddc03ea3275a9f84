"""The API benchmark: every scenario of issue 7 against `orders serve`, next to pgbench's
ceilings on the same PostgreSQL, in one run, with the CPU the service and PostgreSQL spend per
request; then each variant's creates and replays (bench/variants.py) beside the baseline's.

    .venv/bin/python -m bench.api [--seconds 10] [--connections 16 64] [--scenarios ...]
                                  [--variants ...]

BENCH_SECONDS sets the default duration, BENCH_POOL_SIZE the connections per worker. Uses
DATABASE_URL when set, else an embedded PostgreSQL in a fresh temporary directory. Load comes
from wrk when installed (`make bench` installs it), else from a Python fallback generator.
Writes bench/results/bench.json, bench.md (the printed report, for a note) and bench.png.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Final, Literal

import msgspec

from bench import ceilings, scenarios, seed
from bench.cpu import CpuMeter
from bench.load import Measurement, default_generator
from bench.report import (
    Report,
    lifecycle_ratios,
    render,
    targets,
    variant_goals,
    variant_ratios,
    write_chart,
    write_json,
    write_text,
)
from bench.scenarios import Scenario
from bench.service import Service, postgres, serve
from bench.session import PerRun, Session, migrated_session
from bench.variants import BASELINE, VARIANTS, Extra, Variant

RESULTS: Final = Path(__file__).parent / "results"
SEEDED_ORDERS: Final = 1000
LARGE_TABLE: Final = 1_000_000

# Two workers on two cores: PostgreSQL gets no more than ~2 busy backends per core anyway, and
# a worker (one event loop) keeps only a few queries in flight, so 8 per worker (16 in all)
# leaves the database a queue to work from without hundreds of idle backends; requests beyond
# it wait in the pool, which is cheaper than waiting inside PostgreSQL.
DEFAULT_POOL_SIZE: Final = 8


PAY_HEADROOM: Final = 2.0
"""Orders made for a pays run, per second of it, as a multiple of the best create rate so far:
a run that pays faster than that still finds a new order for every request."""
PAY_RATE_GUESS: Final = 3000.0
"""The create rate assumed when no creates were measured before the pays."""
SPARE_ORDERS: Final = 1000


class FreshOrders:
    """The pays scenario for one run: new orders, made just before it, enough for a pay of
    each request's own order (`PAY_HEADROOM`)."""

    def __init__(
        self, database_url: str, scratch: Path, results: Sequence[Measurement] = ()
    ) -> None:
        self._database_url = database_url
        self._scratch = scratch
        self._results = results
        """The measurements so far (a list the session extends), for the best create rate."""
        self._runs = 0

    def __call__(self, seconds: float) -> Scenario:
        rate = max(
            (r.rate for r in self._results if r.scenario == "creates"), default=PAY_RATE_GUESS
        )
        needed = math.ceil(rate * PAY_HEADROOM * seconds) + SPARE_ORDERS
        paths = asyncio.run(seed.payable_orders(self._database_url, needed))
        self._runs += 1
        paths_file = self._scratch / f"pay-paths-{self._runs}.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        return scenarios.pays(paths_file)


class Fixtures:
    """What the scenarios refer to, made once the service is up."""

    def __init__(
        self,
        replay_key: str,
        paths_file: Path,
        pay_replay: tuple[str, str],
        fresh_orders: FreshOrders,
    ) -> None:
        self.replay_key = replay_key
        self.paths_file = paths_file
        self.pay_replay = pay_replay
        """The pay path and key of an order paid once, for its replays."""
        self.fresh_orders = fresh_orders


PLAN: Final[dict[str, Callable[[Fixtures], Scenario | PerRun]]] = {
    "count-1k": lambda _: scenarios.count("1k"),
    "get": lambda f: scenarios.get_order(f.paths_file),
    "list": lambda _: scenarios.list_page(),
    "replays": lambda f: scenarios.replays(f.replay_key),
    "pay-replays": lambda f: scenarios.pay_replays(*f.pay_replay),
    "creates": lambda _: scenarios.creates(),
    "pays": lambda f: f.fresh_orders,
    "creates-again": lambda _: scenarios.creates(name=scenarios.CREATES_AGAIN),
    "mixed": lambda _: scenarios.mixed(),
    "count-1m": lambda _: scenarios.count("1M"),
}
"""In the order they run: the small-table reads first, then the writes, each lifecycle command
right after the create it is compared with (the pays between two runs of creates), then the
bulk load that `count-1m` needs."""
LARGE_SCENARIO: Final = "count-1m"
VARIANT_PLAN: Final[dict[str, Callable[[str], Scenario]]] = {
    "replays": scenarios.replays,
    "creates": lambda _: scenarios.creates(),
}
"""What each variant runs (bench/variants.py), given the key of an order it created."""


def prepare_fixtures(
    service: Service,
    database_url: str,
    scratch: Path,
    results: Sequence[Measurement] = (),
) -> Fixtures:
    """The seeded orders and paid order; the pays' fresh orders are sized from the creates in
    `results`."""
    keys = [f"seed-{uuid.uuid4().hex}" for _ in range(SEEDED_ORDERS)]
    asyncio.run(seed.create_orders(service.base_url, keys))
    paths = asyncio.run(seed.order_paths(database_url, SEEDED_ORDERS))
    paths_file = scratch / "order-paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    pay_key = f"seed-pay-{uuid.uuid4().hex}"
    pay_path = asyncio.run(seed.paid_order(service.base_url, pay_key))
    return Fixtures(
        replay_key=keys[0],
        paths_file=paths_file,
        pay_replay=(pay_path, pay_key),
        fresh_orders=FreshOrders(database_url, scratch, results),
    )


def _commit() -> str | None:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return completed.stdout.strip()


def measure_variant(
    session: Session,
    variant: str,
    service: Service,
    extra: Extra,
    fixtures: Fixtures,
    names: list[str],
) -> None:
    """The variant's creates and replays, every request with its headers; it replays a key
    of its own, created with those headers (a variant may change who is calling)."""
    key = f"seed-{variant}-{uuid.uuid4().hex}"
    asyncio.run(seed.create_orders(service.base_url, [key], headers=extra.headers))
    for name in (n for n in names if n in VARIANT_PLAN):
        scenario = VARIANT_PLAN[name](key)
        scenario = msgspec.structs.replace(scenario, headers=dict(extra.headers))
        session.measure(service, scenario, variant)


def run(
    *,
    seconds: float,
    levels: list[int],
    names: list[str],
    generator: Literal["wrk", "python"],
    workers: int,
    pool_size: int,
    warmup_seconds: float,
    variants: Sequence[Variant] = (),
    large_table: int = LARGE_TABLE,
) -> Report:
    """The baseline's scenarios (all but count-1m), then each variant's creates and replays
    against its own service, then the bulk load and count-1m: variants meet about the table
    the baseline's creates met."""
    bulk_seconds: float | None = None
    with (
        postgres(os.environ.get("DATABASE_URL")) as (database_url, bin_dir),
        tempfile.TemporaryDirectory(prefix="bench-api-") as scratch,
    ):
        session = migrated_session(
            database_url,
            generator=generator,
            levels=levels,
            seconds=seconds,
            warmup_seconds=warmup_seconds,
        )
        asyncio.run(ceilings.prepare(database_url))

        def service(variant: str, env: Mapping[str, str]) -> AbstractContextManager[Service]:
            log = Path(scratch) / f"serve-{variant}.log"
            return serve(database_url, workers=workers, pool_size=pool_size, log=log, env=env)

        with service(BASELINE.name, BASELINE.env) as baseline:
            fixtures = prepare_fixtures(baseline, database_url, Path(scratch), session.results)
            print("pgbench ceilings ...", flush=True)
            pgbench_meter = CpuMeter(service=None, postgres=session.postmaster)
            inserts, selects = ceilings.run_ceilings(
                bin_dir, database_url, levels, seconds, pgbench_meter
            )
            session.ceilings = {"insert": inserts, "select": selects}
            for name in names:
                if name != LARGE_SCENARIO:
                    session.measure(baseline, PLAN[name](fixtures), BASELINE.name)
        for variant in variants:
            with variant.started() as extra, service(variant.name, extra.env) as started:
                measure_variant(session, variant.name, started, extra, fixtures, names)
        if LARGE_SCENARIO in names:
            missing = max(0, large_table - asyncio.run(seed.order_count(database_url)))
            print(f"bulk-loading {missing:,} orders ...", flush=True)
            bulk_seconds = asyncio.run(seed.bulk_load(database_url, missing))
            with service(BASELINE.name, BASELINE.env) as baseline:
                session.measure(baseline, PLAN[LARGE_SCENARIO](fixtures), BASELINE.name)
    ratios = variant_ratios(session.results, {v.name: v.versus for v in variants})
    goals = {v.name: v.goal for v in variants if v.goal is not None}
    return Report(
        generator=generator,
        seconds=seconds,
        workers=workers,
        pool_size=pool_size,
        commit=_commit(),
        results=session.results,
        ceilings=[m for by_level in session.ceilings.values() for m in by_level.values()],
        targets=[*targets(session.results), *variant_goals(ratios, goals)],
        variants=ratios,
        lifecycle=lifecycle_ratios(session.results),
        bulk_load_seconds=bulk_seconds,
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every run of the service under load takes (here and in bench.growth)."""
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("BENCH_SECONDS", "10")),
        help="each measurement's duration (BENCH_SECONDS; a second or two for a smoke run)",
    )
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


def chosen_generator(args: argparse.Namespace) -> Literal["wrk", "python"]:
    """The load generator asked for ("auto": wrk when installed), said out loud."""
    generator: Literal["wrk", "python"] = (
        default_generator() if args.generator == "auto" else args.generator
    )
    if generator == "wrk":
        print("load generator: wrk -t1 with bench/scenario.lua (one thread: 2 cores are shared)")
    else:
        print(
            "load generator: the Python asyncio fallback (wrk is not installed); it needs more "
            "CPU per request than wrk, so rates here understate the service"
        )
    return generator


def main(argv: list[str] | None = None, variants: Sequence[Variant] = VARIANTS) -> None:
    parser = argparse.ArgumentParser(description="The orders API benchmark (issues 7 and 11).")
    add_run_arguments(parser)
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--scenarios", nargs="+", choices=list(PLAN), default=list(PLAN))
    known = [v.name for v in variants]
    parser.add_argument(
        "--variants", nargs="*", choices=known, default=known, help="default: all of them"
    )
    args = parser.parse_args(argv)
    report = run(
        seconds=args.seconds,
        levels=args.connections,
        names=[name for name in PLAN if name in args.scenarios],
        generator=chosen_generator(args),
        workers=args.workers,
        pool_size=args.pool_size,
        warmup_seconds=args.warmup_seconds,
        variants=[v for v in variants if v.name in args.variants],
    )
    summary = render(report)
    print(summary)
    write_json(report, args.output / "bench.json")
    write_text(summary, args.output / "bench.md")
    write_chart(report, args.output / "bench.png")
    print(f"written: {args.output / 'bench.json'}, bench.md, bench.png")


if __name__ == "__main__":
    main()
