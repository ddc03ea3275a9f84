"""A throwaway RabbitMQ node for the tests: Debian's rabbitmq-server (`make rabbitmq`), run as
this user with its own ports, node name, Erlang cookie, epmd, and data and log directories in
a temporary directory, so it touches no system broker and leaves nothing behind.

The node can be SIGKILLed and started again on the same directory (a broker crash: durable
queues and the persistent messages they had confirmed come back).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.processes.services import free_port

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
CTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")
START_SECONDS = 60.0


class BrokerMissing(RuntimeError):
    """rabbitmq-server is not installed."""


def installed() -> bool:
    return SERVER.exists() and CTL.exists()


class Broker:
    """One RabbitMQ node under `base`; `url` reaches it as guest (allowed from loopback)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self._epmd_port = free_port()
        self._node = f"orders-test-{uuid.uuid4().hex[:8]}@localhost"
        (base / "home").mkdir()
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "disk_free_limit.absolute = 50MB\n"
            "log.file.level = warning\n"
        )
        self._env = {
            "PATH": os.environ["PATH"],
            "HOME": str(base / "home"),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self._node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "ERL_EPMD_PORT": str(self._epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
            # No scheduler busy-waiting: on a shared two-core machine the spinning Erlang
            # schedulers would take CPU from PostgreSQL and the tests.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+sbwt none +sbwtdcpu none +sbwtdio none",
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int | None:
        """The node's first process (rabbitmq-server), the root of its process tree; None while
        it is not running."""
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        log = (self.base / "server.log").open("ab")
        self._process = subprocess.Popen(
            [str(SERVER)],
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        # await_startup waits for a node that runs; until the node has registered with epmd
        # it fails at once, so ask again until the deadline.
        deadline = time.monotonic() + START_SECONDS
        while True:
            started = subprocess.run(
                [str(CTL), "-n", self._node, "--timeout", "30", "await_startup"],
                env=self._env,
                capture_output=True,
                timeout=40,
            )
            if started.returncode == 0 or self._process.poll() is not None:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if started.returncode != 0 or self._process.poll() is not None:
            self.kill()
            raise RuntimeError(
                f"rabbitmq did not start: {started.stderr.decode(errors='replace')[-2000:]}\n"
                + (self.base / "server.log").read_text(errors="replace")[-4000:]
            )

    def kill(self) -> None:
        """SIGKILL the node (its whole process group) and wait for it to be gone."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(10)
        self._process = None
        # epmd forgets a node once its connection closes; wait for that, or the next start
        # finds the name still registered.
        deadline = time.monotonic() + 10
        while self._registered() and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        self.kill()
        self.start()

    def ctl(self, *args: str) -> str:
        done = subprocess.run(
            [str(CTL), "-n", self._node, *args],
            env=self._env,
            capture_output=True,
            timeout=30,
            check=True,
        )
        return done.stdout.decode()

    def stop(self) -> None:
        self.kill()
        epmd = shutil.which("epmd")
        if epmd:
            subprocess.run(
                [epmd, "-port", str(self._epmd_port), "-kill"],
                env=self._env,
                capture_output=True,
                timeout=10,
            )

    def _registered(self) -> bool:
        epmd = shutil.which("epmd")
        if epmd is None:
            return False
        names = subprocess.run(
            [epmd, "-port", str(self._epmd_port), "-names"],
            env=self._env,
            capture_output=True,
            timeout=10,
        )
        return self._node.split("@")[0] in names.stdout.decode(errors="replace")


@contextlib.contextmanager
def throwaway_broker() -> Iterator[Broker]:
    """A started node, stopped (and its directory removed) on leaving."""
    if not installed():
        raise BrokerMissing("rabbitmq-server is not installed: run `make rabbitmq`")
    with tempfile.TemporaryDirectory(prefix="orders-rabbitmq-") as base:
        broker = Broker(Path(base))
        try:
            broker.start()
            yield broker
        finally:
            broker.stop()
