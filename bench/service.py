"""The system under test: a PostgreSQL server and `orders serve` running on it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from orders.embedded import EmbeddedPostgres

READY_DEADLINE_SECONDS = 60.0

CHECKOUT = Path(__file__).resolve().parents[1]


def orders_command() -> list[str]:
    """The `orders` command of the checkout this benchmark is in. Not the venv's `orders`
    script: that imports the editable install, which names one checkout, maybe another one
    (a benchmark run in a worktree would measure the main checkout's service). `-P` keeps the
    working directory off sys.path; uvicorn's workers, spawned, inherit sys.path."""
    run = f"import sys; sys.path.insert(0, {str(CHECKOUT)!r}); from orders.cli import main; "
    return [sys.executable, "-P", "-c", run + "sys.exit(main(sys.argv[1:]))"]


@contextmanager
def postgres(external_url: str | None) -> Iterator[tuple[str, Path]]:
    """The URL and the binary directory (pgbench) of the server to measure: `external_url`
    with pgbench from PATH, else an embedded server in a fresh temporary directory."""
    if external_url:
        pgbench = shutil.which("pgbench")
        if pgbench is None:
            raise SystemExit("DATABASE_URL is set but there is no pgbench on PATH")
        yield external_url, Path(pgbench).parent
        return
    data_dir = Path(tempfile.mkdtemp(prefix="orders-bench-"))
    try:
        with EmbeddedPostgres(data_dir / "pg") as embedded:
            yield embedded.url, embedded.bin_dir
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Service:
    """`orders serve --workers N` as a child process; `pid` is uvicorn's supervisor, whose
    children are the workers."""

    def __init__(self, process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def serve(
    database_url: str,
    *,
    workers: int,
    pool_size: int,
    log: Path,
    env: Mapping[str, str] | None = None,
) -> Iterator[Service]:
    """Run the service, with `env` added to its environment, until the block ends. Its JSON
    logs go to `log` (a terminal would slow it down); the request log stays at the default
    level, as deployed."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ORDERS_POOL_SIZE": str(pool_size),
        **(env or {}),
    }
    command = [*orders_command(), "serve", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env=environment, stdout=sink, stderr=sink, start_new_session=True
        )
    service = Service(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_ready(service)
        yield service
    finally:
        _stop(process)


def _wait_ready(service: Service) -> None:
    deadline = time.monotonic() + READY_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"orders serve exited:\n{service.log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{service.base_url}/health/ready", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"orders serve not ready in {READY_DEADLINE_SECONDS:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (graceful: uvicorn drains, pools close), then the whole group if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
