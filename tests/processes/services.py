"""Real `orders serve` processes for tests and runners: each on a free port of 127.0.0.1,
against a given database, ready before it is handed out, and ended whatever happens; and other
`orders` commands run to their end. This release's by default, or another's."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from orders.embedded import EmbeddedPostgres

REPOSITORY = Path(__file__).resolve().parents[2]

# How a release's `orders` command runs: its packages first on PYTHONPATH, and `-P` so that no
# script or working directory goes in front of them. Not the venv's `orders` script: that
# imports the editable install, which names one checkout, maybe another than the one under
# test (a worktree's tests would run the main checkout's service).
PYTHON: Final = (sys.executable, "-P")
RUN_CLI: Final = "import sys; from orders.cli import main; sys.exit(main(sys.argv[1:]))"
READY_WITHIN_SECONDS = 30.0


@dataclass(frozen=True)
class Release:
    """How to run one release's `orders` command: what stands for `orders` on a command line,
    and what it adds to the environment."""

    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


THIS_RELEASE = Release((*PYTHON, "-c", RUN_CLI), env={"PYTHONPATH": str(REPOSITORY)})


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Service:
    """One `orders serve` process group (the server and any uvicorn workers it spawned)."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL the whole group: no graceful shutdown, connections simply drop."""
        self._signal(signal.SIGKILL)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def _signal(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if the group has not exited within ten seconds."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 10)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                await asyncio.to_thread(self.process.wait, 10)
        # Workers are in the group too: make sure none outlives its parent.
        self._signal(signal.SIGKILL)


def service_environment(database_url: str, extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_")}
    env.update({"DATABASE_URL": database_url, "ORDERS_POOL_SIZE": "10", **extra})
    return env


async def wait_ready(service: Service, within: float = READY_WITHIN_SECONDS) -> None:
    """Poll /health/ready until it answers 200; fail on the deadline or if the process exits."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=service.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise RuntimeError(f"orders serve exited early:\n{service.log_text()[-4000:]}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/health/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"orders serve not ready within {within} s:\n{service.log_text()[-4000:]}")


def start(
    database_url: str,
    log_dir: Path,
    *,
    workers: int,
    env: Mapping[str, str] | None,
    release: Release = THIS_RELEASE,
) -> Service:
    """Spawn `orders serve` (not yet ready) with its output in a file in `log_dir`."""
    port = free_port()
    log_path = log_dir / f"orders-serve-{port}.log"
    command = [*release.command, "serve", "--port", str(port), "--workers", str(workers)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            env=service_environment(database_url, {**release.env, **(env or {})}),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches every worker
        )
    return Service(process, port, log_path)


@contextlib.asynccontextmanager
async def served(
    database_url: str,
    log_dir: Path,
    *,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    release: Release = THIS_RELEASE,
) -> AsyncIterator[Service]:
    """An `orders serve` on `database_url`, ready; its JSON logs go to a file in `log_dir`."""
    service = start(database_url, log_dir, workers=workers, env=env, release=release)
    try:
        await wait_ready(service)
        yield service
    finally:
        await service.stop()


async def run_command(
    args: Sequence[str], database_url: str, release: Release = THIS_RELEASE
) -> tuple[int, str]:
    """Run `orders <args>` on `database_url` to its end: its exit code and its output."""
    process = await asyncio.create_subprocess_exec(
        *release.command,
        *args,
        env=service_environment(database_url, release.env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return await process.wait(), output.decode(errors="replace")


@contextlib.asynccontextmanager
async def embedded_server() -> AsyncIterator[EmbeddedPostgres]:
    """A PostgreSQL server of the caller's own, in a new temporary directory, removed after."""
    data_dir = Path(tempfile.mkdtemp(prefix="orders-pg-"))
    server = EmbeddedPostgres(data_dir / "pg")
    try:
        await asyncio.to_thread(server.start)
        yield server
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.asynccontextmanager
async def fresh_database(given: str | None) -> AsyncIterator[str]:
    """`given` if there is one, else the (empty) database of a new embedded server."""
    if given:
        yield given
        return
    async with embedded_server() as server:
        yield server.url
