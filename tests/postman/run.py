"""`make postman`: run the Postman collection with newman against services started on a fresh
embedded database, or against `--base-url` (e.g. http://arch.homework) when given.

    python -m tests.postman.run [--base-url URL [--auth none|jwt]]

The collection has three folders: the seed's contract and the order's lifecycle (create, pay,
ship, deliver, the cancels, a refused transition, a stale If-Match, replays), for a service
with `ORDERS_AUTH=none`, and the authenticated callers, for one with `ORDERS_AUTH=jwt` trusting
the test-only key in tests/auth/. Without `--base-url` each mode's folders run against a
service started for it; with it, the folders of the mode `--auth` names (default: none) run
against that service.

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
from typing import Final

from tests.auth.tokens import AUDIENCE, HERE, ISSUER
from tests.processes.services import fresh_database, served

REPO = Path(__file__).resolve().parents[2]
COLLECTION = Path(__file__).with_name("orders.postman_collection.json")
NEWMAN = REPO / "node_modules" / ".bin" / "newman"
FOLDERS: Final = {
    "none": ("Seed contract (ORDERS_AUTH=none)", "Lifecycle (ORDERS_AUTH=none)"),
    "jwt": ("Authenticated callers (ORDERS_AUTH=jwt)",),
}
SERVICE_ENV: Final = {
    "none": {},
    "jwt": {
        "ORDERS_AUTH": "jwt",
        "ORDERS_JWT_PUBLIC_KEY": str(HERE / "test-only-rsa-public.pem"),
        "ORDERS_JWT_ISSUER": ISSUER,
        "ORDERS_JWT_AUDIENCE": AUDIENCE,
    },
}


def newman(base_url: str, auth: str) -> int:
    command = [str(NEWMAN), "run", str(COLLECTION), "--env-var", f"baseUrl={base_url}"]
    for folder in FOLDERS[auth]:
        command += ["--folder", folder]
    return subprocess.run(command, check=False, stdin=subprocess.DEVNULL).returncode


async def against_fresh_services() -> int:
    failed = 0
    with tempfile.TemporaryDirectory(prefix="orders-postman-") as logs:
        async with fresh_database(None) as url:
            for auth, env in SERVICE_ENV.items():
                async with served(url, Path(logs), env=env) as service:
                    failed |= await asyncio.to_thread(newman, service.base_url, auth)
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="a running service (default: start them)")
    parser.add_argument(
        "--auth", choices=sorted(FOLDERS), default="none", help="with --base-url: its mode"
    )
    args = parser.parse_args(argv)
    if args.base_url:
        return newman(args.base_url.rstrip("/"), args.auth)
    return asyncio.run(against_fresh_services())


if __name__ == "__main__":
    sys.exit(main())
