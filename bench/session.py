"""One benchmark run against one PostgreSQL: how each scenario is measured, and the results."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Literal

import msgspec

from bench import seed
from bench.cpu import CpuMeter, postmaster_pid
from bench.load import Measurement, run_load
from bench.scenarios import Ceiling, Scenario
from bench.service import Service
from bench.variants import BASELINE
from orders.database import migrate_database

PerRun = Callable[[float], Scenario]
"""A scenario made anew for each run of the given seconds (one whose requests use up what it
was given, e.g. orders to pay once each)."""


class Session:
    """One benchmark run's server, load generator and measurements so far."""

    def __init__(
        self,
        *,
        database_url: str,
        postmaster: int | None,
        generator: Literal["wrk", "python"],
        levels: list[int],
        seconds: float,
        warmup_seconds: float,
    ) -> None:
        self.database_url = database_url
        self.postmaster = postmaster
        self.generator: Literal["wrk", "python"] = generator
        self.levels = levels
        self.seconds = seconds
        self.warmup_seconds = warmup_seconds
        self.results: list[Measurement] = []
        self.ceilings: dict[Ceiling, dict[int, Measurement]] = {}

    def measure(
        self, service: Service, scenario: Scenario | PerRun, variant: str = BASELINE.name
    ) -> list[Measurement]:
        """Run `scenario` at each connection count (after a warm-up), with the CPU each side
        spent and the ratio to the pgbench ceiling when one was measured."""
        measured_now: list[Measurement] = []
        meter = CpuMeter(service=service.pid, postgres=self.postmaster)

        def for_run(seconds: float) -> Scenario:
            return scenario if isinstance(scenario, Scenario) else scenario(seconds)

        if self.warmup_seconds > 0:
            warmup = for_run(self.warmup_seconds)
            run_load(self.generator, warmup, service.base_url, self.levels[0], self.warmup_seconds)
        for level in self.levels:
            run = for_run(self.seconds)
            orders = asyncio.run(seed.order_count(self.database_url))
            load = partial(run_load, self.generator, run, service.base_url, level, self.seconds)
            measured = meter.measure(load)
            ceiling = self.ceilings.get(run.ceiling, {}).get(level)
            if ceiling is not None:
                measured = msgspec.structs.replace(
                    measured,
                    ceiling=ceiling.scenario,
                    ratio=measured.rate / ceiling.rate if ceiling.rate else None,
                )
            measured_now.append(msgspec.structs.replace(measured, orders=orders, variant=variant))
            print(
                f"  {run.name} ({variant}) @{level}: {measured.rate:.0f}/s, "
                f"p99 {measured.p99_ms:.1f} ms, {measured.errors} errors",
                flush=True,
            )
        self.results += measured_now
        return measured_now


def migrated_session(
    database_url: str,
    *,
    generator: Literal["wrk", "python"],
    levels: list[int],
    seconds: float,
    warmup_seconds: float,
) -> Session:
    """A session on `database_url`, migrated, with the server's postmaster found for the CPU
    readings (None for a server on another machine)."""
    asyncio.run(migrate_database(database_url))
    return Session(
        database_url=database_url,
        postmaster=asyncio.run(postmaster_pid(database_url)),
        generator=generator,
        levels=levels,
        seconds=seconds,
        warmup_seconds=warmup_seconds,
    )
