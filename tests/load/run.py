"""`make load`: start the service (two workers) on a fresh database, run the locust check
headless against it, then verify the database. Exits non-zero when any check fails.

    python -m tests.load.run [--seconds N] [--users N] [--database-url URL]

Without `--database-url`, a fresh embedded PostgreSQL in a temporary directory. `LOAD_SECONDS`
sets the default duration (60).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.load.verify import Figures, verify
from tests.processes.services import fresh_database, served

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
LOCUST = Path(sys.executable).with_name("locust")


def run_locust(base_url: str, seconds: int, users: int, report: Path) -> None:
    command = [
        str(LOCUST), "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--host", base_url, "--users", str(users), "--spawn-rate", str(users),
        "--run-time", f"{seconds}s", "--stop-timeout", "10", "--loglevel", "WARNING",
    ]  # fmt: skip
    env = {**os.environ, "LOAD_REPORT": str(report)}
    # Locust's own exit code reflects failed requests; the verdict is verify()'s.
    subprocess.run(command, env=env, check=False, stdin=subprocess.DEVNULL)


async def load_check(seconds: int, users: int, database_url: str | None) -> Figures:
    with tempfile.TemporaryDirectory(prefix="orders-load-") as work:
        work_dir = Path(work)
        report = work_dir / "report.json"
        async with (
            fresh_database(database_url) as url,
            served(url, work_dir, workers=2) as service,
        ):
            print(f"load: {users} users for {seconds} s against {service.base_url}", flush=True)
            await asyncio.to_thread(run_locust, service.base_url, seconds, users, report)
            return await verify(url, json.loads(report.read_text()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("LOAD_SECONDS", 60)))
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--database-url", help="a migrated, empty database (default: embedded)")
    args = parser.parse_args(argv)
    figures = asyncio.run(load_check(args.seconds, args.users, args.database_url))
    print(figures.summary())
    return 0 if figures.passed else 1


if __name__ == "__main__":
    sys.exit(main())
