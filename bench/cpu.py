"""CPU time of the service and of PostgreSQL, read from /proc, per request measured.

Each side is a process tree: `orders serve` (uvicorn's supervisor and its workers) and the
PostgreSQL server (the postmaster and every backend and helper it forked). A tree's CPU so far
is, over its live processes, user + system time plus the time of the children each has reaped:
a backend that exits during the measurement is counted by the postmaster that waited for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Final, NamedTuple

import msgspec

from bench.load import Measurement
from orders.eventstore.pool import connect

PROC: Final = Path("/proc")
TICKS_PER_SECOND: Final = os.sysconf("SC_CLK_TCK")


class _Process(NamedTuple):
    parent: int
    ticks: int
    """utime + stime + cutime + cstime."""


def _processes() -> dict[int, _Process]:
    found: dict[int, _Process] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited meanwhile
            continue
        # The command name is in parentheses and may hold spaces: fields follow the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = _Process(int(fields[1]), sum(int(f) for f in fields[11:15]))
    return found


def tree_cpu_seconds(root: int, processes: dict[int, _Process]) -> float:
    """CPU seconds used so far by `root` and its descendants (see the module docstring)."""
    children: dict[int, list[int]] = {}
    for pid, process in processes.items():
        children.setdefault(process.parent, []).append(pid)
    ticks, pending = 0, [root]
    while pending:
        pid = pending.pop()
        if pid in processes:
            ticks += processes[pid].ticks
            pending += children.get(pid, [])
    return ticks / TICKS_PER_SECOND


def trees_cpu_seconds(*roots: int | None) -> tuple[float | None, ...]:
    """The CPU seconds so far of each root's tree (None for a root of None), from one reading
    of /proc: the figures of one sample are of one moment."""
    processes = _processes()
    return tuple(None if root is None else tree_cpu_seconds(root, processes) for root in roots)


def thread_cpu_seconds() -> float:
    """CPU seconds so far of the calling thread (user + system, /proc/thread-self): what a
    client running in this process's event loop spent, without the other threads (a load
    generator's) or the children (wrk) of the process."""
    stat = (PROC / "thread-self" / "stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


async def postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server's process on this machine: the parent of our backend, if that
    backend is a local process (None for a server elsewhere, or without /proc)."""
    conn = await connect(url, application_name="bench-cpu")
    try:
        backend: int = await conn.fetchval("SELECT pg_backend_pid()")
        processes = _processes() if PROC.is_dir() else {}
        if backend not in processes:
            return None
        postmaster = processes[backend].parent
        names = [_name(pid) for pid in (backend, postmaster)]
        return postmaster if names == ["postgres", "postgres"] else None
    finally:
        await conn.close()


def _name(pid: int) -> str | None:
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return None


class CpuSample(NamedTuple):
    service: float | None
    postgres: float | None


class CpuMeter:
    """Samples the CPU seconds of the service's and PostgreSQL's trees (either may be absent:
    no service running, or a server not on this machine)."""

    def __init__(self, *, service: int | None, postgres: int | None) -> None:
        self._service = service
        self._postgres = postgres

    def sample(self) -> CpuSample:
        processes = _processes()

        def seconds(root: int | None) -> float | None:
            return None if root is None else tree_cpu_seconds(root, processes)

        return CpuSample(seconds(self._service), seconds(self._postgres))

    def measure(self, run: Callable[[], Measurement]) -> Measurement:
        """`run()`'s measurement with the CPU each side spent meanwhile, per request."""
        before = self.sample()
        measured = run()
        after = self.sample()

        def per_request_ms(start: float | None, end: float | None) -> float | None:
            if start is None or end is None or measured.requests == 0:
                return None
            return (end - start) / measured.requests * 1000

        postgres_ms = per_request_ms(before.postgres, after.postgres)
        return msgspec.structs.replace(
            measured,
            service_cpu_ms=per_request_ms(before.service, after.service),
            postgres_cpu_ms=postgres_ms,
            per_postgres_core=1000 / postgres_ms if postgres_ms else None,
        )
