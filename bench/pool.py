"""What the fair pool's gate costs per acquire: acquire + release cycles of `create_pool` (the
store's pool) against a plain `asyncpg.create_pool` with the same size, no query in between.

    .venv/bin/python -m bench.pool [--cycles 50000] [--tasks 1 64] [--size 8]

With one task nobody waits; with 64 tasks on 8 connections (a worker under load) most cycles
queue. Uses DATABASE_URL when set, else an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import asyncpg

from bench.service import postgres
from orders.eventstore.pool import create_pool

PoolFactory = Callable[[str, int], Awaitable[asyncpg.Pool]]


async def _no_reset(connection: asyncpg.Connection) -> None:
    """The store's pool skips asyncpg's reset query on release too (orders.eventstore.pool)."""


async def _plain(url: str, size: int) -> asyncpg.Pool:
    pool: asyncpg.Pool = await asyncpg.create_pool(
        url, min_size=size, max_size=size, reset=_no_reset
    )
    return pool


async def _fair(url: str, size: int) -> asyncpg.Pool:
    return await create_pool(url, size=size)


POOLS: dict[str, PoolFactory] = {"asyncpg.create_pool": _plain, "orders create_pool": _fair}


async def microseconds_per_cycle(
    factory: PoolFactory, url: str, size: int, tasks: int, cycles: int
) -> float:
    """CPU time of this process per acquire + release, `cycles` in all, shared by `tasks`
    tasks (CPU rather than wall time: the machine may be busy, and CPU is what it costs)."""
    pool = await factory(url, size)
    per_task = cycles // tasks

    async def cycle() -> None:
        for _ in range(per_task):
            async with pool.acquire():
                pass

    try:
        started = time.process_time()
        await asyncio.gather(*(cycle() for _ in range(tasks)))
        elapsed = time.process_time() - started
    finally:
        await pool.close()
    return elapsed / (per_task * tasks) * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cycles", type=int, default=50_000)
    parser.add_argument("--tasks", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)
    with postgres(os.environ.get("DATABASE_URL")) as (url, _):
        for tasks in args.tasks:
            best = dict.fromkeys(POOLS, float("inf"))
            for _ in range(args.rounds):  # interleaved, so a busy moment hits both alike
                for name, factory in POOLS.items():
                    measured = microseconds_per_cycle(factory, url, args.size, tasks, args.cycles)
                    best[name] = min(best[name], asyncio.run(measured))
            for name, micros in best.items():
                print(f"{name:<22} pool {args.size}, {tasks:>3} tasks: {micros:6.2f} us CPU each")


if __name__ == "__main__":
    main()
