"""`make postman`: run the Postman collection with newman against a service started on a fresh
embedded database, or against `--base-url` (e.g. http://arch.homework) when given.

    python -m tests.postman.run [--base-url URL]

newman is expected in node_modules/.bin (the Makefile target installs it there).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.processes.services import fresh_database, served

REPO = Path(__file__).resolve().parents[2]
COLLECTION = Path(__file__).with_name("orders.postman_collection.json")
NEWMAN = REPO / "node_modules" / ".bin" / "newman"


def newman(base_url: str) -> int:
    command = [str(NEWMAN), "run", str(COLLECTION), "--env-var", f"baseUrl={base_url}"]
    return subprocess.run(command, check=False, stdin=subprocess.DEVNULL).returncode


async def against_fresh_service() -> int:
    with tempfile.TemporaryDirectory(prefix="orders-postman-") as logs:
        async with fresh_database(None) as url, served(url, Path(logs)) as service:
            return await asyncio.to_thread(newman, service.base_url)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="a running service (default: start one)")
    args = parser.parse_args(argv)
    if args.base_url:
        return newman(args.base_url.rstrip("/"))
    return asyncio.run(against_fresh_service())


if __name__ == "__main__":
    sys.exit(main())
