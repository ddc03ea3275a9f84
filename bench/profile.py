"""Where a create, a replay and a pay spend their time: py-spy over the serve workers under load,
PostgreSQL's plan of the create-or-get statement, and a one-connection time split.

    .venv/bin/python -m bench.profile [--seconds 10] [--connections 64]

Separate from `make bench` because sampling slows the workers. Writes one
bench/results/<scenario>.speedscope.json for each of creates, replays, pays and pay-replays
(open them at https://www.speedscope.app) and bench/results/profile.txt, the summary printed
at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec

import projections.orders
from bench import scenarios, seed
from bench.api import DEFAULT_POOL_SIZE, RESULTS, prepare_fixtures
from bench.load import default_generator, run_load
from bench.profile_summary import summarise
from bench.scenarios import BODY, Scenario
from bench.service import postgres, serve
from orders.create_order import OrderCreator
from orders.database import migrate_database
from orders.domain.commands import OrderRequest
from orders.eventstore import EventStore
from orders.eventstore import sql as store_sql
from orders.eventstore.pool import connect, create_pool

SERIAL_CALLS: Final = 300
_REQUEST = msgspec.json.decode(BODY, type=OrderRequest)


def record(pid: int, output: Path, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` and its children (the workers) without pausing them."""
    py_spy = Path(sys.executable).with_name("py-spy")
    command = [str(py_spy), "record", "--pid", str(pid), "--subprocesses", "--nonblocking"]
    command += ["--format", "speedscope", "--output", str(output)]
    command += ["--duration", str(max(1, round(seconds)))]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def explain(url: str, replay_key: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the create-or-get statement with the inline projection,
    for a new key (rolled back) and for an existing one."""
    statement = store_sql.START_STREAMS.format(then=projections.orders.INLINE)
    data = seed.order_created_data()
    conn = await connect(url, application_name="bench-explain")
    plans: list[str] = []
    try:
        for label, key in (("create (new key)", f"explain-{uuid.uuid4()}"), ("replay", replay_key)):
            transaction = conn.transaction()
            await transaction.start()
            rows = await conn.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS) {statement}",
                [key],
                ["OrderCreated"],
                [data],
                [b"{}"],
                # As the service passes it (ORDERS_REPLICATION_BARRIER's default): this server
                # has no synchronous standbys, so the barrier writes nothing.
                "auto",
            )
            await transaction.rollback()
            plans.append(f"-- {label}\n" + "\n".join(row[0] for row in rows))
    finally:
        await conn.close()
    return "\n\n".join(plans)


async def use_case_latency(url: str, replay_key: str) -> dict[str, float]:
    """Median ms of OrderCreator.create called directly (no HTTP) on one connection."""
    pool = await create_pool(url, size=1, application_name="bench-serial")
    creator = OrderCreator(EventStore(pool), inline_projection=projections.orders.INLINE)
    medians: dict[str, float] = {}
    try:
        fresh = [f"serial-{uuid.uuid4().hex}-{i}" for i in range(SERIAL_CALLS)]
        for label, keys in (("creates", fresh), ("replays", [replay_key] * SERIAL_CALLS)):
            latencies = []
            for key in keys:
                started = time.perf_counter()
                await creator.create(key, _REQUEST)
                latencies.append(time.perf_counter() - started)
            medians[label] = statistics.median(latencies) * 1000
    finally:
        await pool.close()
    return medians


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Profile the create and replay paths.")
    parser.add_argument(
        "--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "10"))
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--pool-size", type=int, default=int(os.environ.get("BENCH_POOL_SIZE", DEFAULT_POOL_SIZE))
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    generator = default_generator()
    args.output.mkdir(parents=True, exist_ok=True)
    sections: list[str] = [f"profile at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load: {generator}"]
    with (
        postgres(os.environ.get("DATABASE_URL")) as (url, _),
        tempfile.TemporaryDirectory(prefix="bench-profile-") as scratch,
    ):
        asyncio.run(migrate_database(url))
        log = Path(scratch) / "serve.log"
        with serve(url, workers=2, pool_size=args.pool_size, log=log) as service:
            fixtures = prepare_fixtures(service, url, Path(scratch))
            plan: list[Scenario] = [scenarios.creates(), scenarios.replays(fixtures.replay_key)]
            one_connection: dict[str, float] = {}
            for scenario in plan:
                one_connection[scenario.name] = run_load(
                    generator, scenario, service.base_url, 1, min(3.0, args.seconds)
                ).p50_ms
            # The first pass also pays for a young cluster's first WAL segments and relation
            # extensions; the second measures the steady state.
            asyncio.run(use_case_latency(url, fixtures.replay_key))
            direct = asyncio.run(use_case_latency(url, fixtures.replay_key))
            sections.append(
                "== time split on one connection (median ms), service idle otherwise\n"
                + "\n".join(
                    f"{name:<8} HTTP p50 {one_connection[name]:6.2f}   OrderCreator.create "
                    f"{direct[name]:6.2f}   HTTP + framework "
                    f"{one_connection[name] - direct[name]:6.2f}"
                    for name in direct
                )
            )
            pay_replays = scenarios.pay_replays(*fixtures.pay_replay)
            for scenario in [*plan, fixtures.fresh_orders(args.seconds), pay_replays]:
                output = args.output / f"{scenario.name.replace(' ', '-')}.speedscope.json"
                sampler = record(service.pid, output, args.seconds + 1)
                time.sleep(0.5)  # py-spy attaches to every worker before the load starts
                measured = run_load(
                    generator, scenario, service.base_url, args.connections, args.seconds
                )
                _, errors = sampler.communicate()
                if sampler.returncode != 0:
                    raise RuntimeError(f"py-spy failed: {errors.decode()}")
                sections.append(
                    f"== {scenario.name} @{args.connections} under py-spy: "
                    f"{measured.rate:.0f}/s, p99 {measured.p99_ms:.1f} ms ({output.name})\n"
                    + summarise(output)
                )
        sections.append("== PostgreSQL\n" + asyncio.run(explain(url, fixtures.replay_key)))
    summary = "\n\n".join(sections)
    print(summary)
    (args.output / "profile.txt").write_text(summary + "\n")


if __name__ == "__main__":
    main()
