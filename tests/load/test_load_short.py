"""CI's short run of `make load`: the same runner, for 20 seconds, on this module's database."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SECONDS = 20


async def test_twenty_seconds_of_load_leave_one_order_per_accepted_key_and_no_5xx(
    database_url: str,
) -> None:
    command = [sys.executable, "-m", "tests.load.run", "--seconds", str(SECONDS)]
    run = await asyncio.to_thread(
        subprocess.run,
        [*command, "--database-url", database_url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SECONDS + 60,
    )
    print(run.stdout[-3000:], run.stderr[-3000:])
    assert run.returncode == 0
    assert run.stdout.rstrip().endswith("PASSED")
