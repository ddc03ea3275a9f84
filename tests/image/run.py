"""`make image-check`: build the image with podman and run it the way Kubernetes runs it.

    python -m tests.image.run

1. podman, runc and debootstrap, from Debian when missing (tests/image/host.py);
2. the base: `PYTHON_IMAGE` if set, else the Debian stand-in of deployments/image/base.sh,
   reused while that script is unchanged;
3. the image from the Dockerfile; its size and its virtualenv's, which must hold exactly the
   locked packages and the service, nothing else, in under 100 MB, and whose every compiled
   extension (stripped by the Dockerfile) must import;
4. on a fresh embedded PostgreSQL of this machine, reached through its socket file: without
   `DATABASE_URL` the image refuses clearly; `orders migrate`; then the image's own command,
   `serve`, as uid 10001 with no capabilities on a read-only root, checked over HTTP
   (tests/image/probe.py) and stopped with SIGTERM.

Everything it starts (containers, the PostgreSQL server) it stops. Without root it says so and
skips; with CI set, as in CI, a skip is a failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from orders.embedded import EmbeddedPostgres
from tests.image.host import REPO, base_image, install_missing_tools, why_it_cannot_run
from tests.image.podman import Container, build, podman, run_once
from tests.image.report import CheckFailed, expect, note, ok

TAG = "localhost/orders:check"
REQUIREMENTS = REPO / "deployments" / "image" / "requirements.txt"
INVENTORY = Path(__file__).with_name("inventory.py")
SERVICE = "http://127.0.0.1:8000"  # the image's CMD, inside the container's own network
SOCKET_FOLDER = "/run/postgresql"  # where the container finds the database's socket file
STOP_GRACE_SECONDS = 30  # as the Deployment's terminationGracePeriodSeconds
MB = 1_000_000
VIRTUALENV_LIMIT_MB = 100  # issue 13's target; 94 MB when it was set, 124 MB unstripped


def locked_packages() -> dict[str, str]:
    """What the image must hold: the locked packages for this platform, less the build group
    (the Dockerfile removes it), plus the service itself."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    build_group = pyproject["dependency-groups"]["build"]
    build_only = {canonicalize_name(Requirement(entry).name) for entry in build_group}
    expected: dict[str, str] = {"orders": pyproject["project"]["version"]}
    for line in REQUIREMENTS.read_text().splitlines():
        if not line or line[0].isspace() or line.startswith("#"):
            continue  # a hash, an annotation or uv's header
        requirement = Requirement(line.rstrip(" \\"))
        name = canonicalize_name(requirement.name)
        applies = requirement.marker is None or requirement.marker.evaluate()
        if applies and name not in build_only:
            (pin,) = requirement.specifier
            expected[name] = pin.version
    return expected


def check_contents(image: str) -> None:
    options = ["--volume", f"{INVENTORY}:/inventory.py:ro", "--entrypoint", "python"]
    listed = run_once(image, ["/inventory.py"], options=options)
    expect(listed.returncode == 0, f"inventory: {listed.stderr[-2000:]}")
    inventory = json.loads(listed.stdout)
    installed = {canonicalize_name(n): v for n, v in inventory["distributions"].items()}
    expected = locked_packages()
    expect(
        installed == expected,
        "the virtualenv is not the lock: "
        f"extra {sorted(installed.items() - expected.items())}, "
        f"missing {sorted(expected.items() - installed.items())}",
    )
    failed = {module: error for module, error in inventory["extensions"].items() if error}
    expect(not failed, f"compiled extensions that do not import: {failed}")
    virtualenv_mb = inventory["bytes"] / MB
    expect(
        virtualenv_mb < VIRTUALENV_LIMIT_MB,
        f"the virtualenv is {virtualenv_mb:.0f} MB, over the {VIRTUALENV_LIMIT_MB} MB limit",
    )
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout)
    ok(
        f"the virtualenv holds exactly the {len(expected) - 1} locked packages and orders, "
        f"and its {len(inventory['extensions'])} compiled extensions import: "
        f"virtualenv {virtualenv_mb:.0f} MB (limit {VIRTUALENV_LIMIT_MB}), image {size / MB:.0f} MB"
    )


def socket_options(url: str) -> list[str]:
    """The server's socket file mounted into the container (its folder is private to the
    server's user), and a DATABASE_URL that points there."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    socket_name = f".s.PGSQL.{parts.port or 5432}"
    inside = parts._replace(query=urlencode({**query, "host": SOCKET_FOLDER})).geturl()
    return [
        "--volume", f"{query['host']}/{socket_name}:{SOCKET_FOLDER}/{socket_name}",
        "--env", f"DATABASE_URL={inside}",
    ]  # fmt: skip


def check_no_embedded_server(image: str) -> None:
    refused = run_once(image, ["migrate"])
    expect(
        refused.returncode == 2 and "DATABASE_URL is unset" in refused.stderr,
        f"without DATABASE_URL: exit {refused.returncode}, {refused.stderr[-2000:]!r}",
    )
    ok(f"without DATABASE_URL: exit 2, {refused.stderr.strip().splitlines()[-1]!r}")


def check_migrate(image: str, database: list[str]) -> None:
    migrated = run_once(image, ["migrate"], options=database)
    expect(migrated.returncode == 0, f"migrate: exit {migrated.returncode}: {migrated.stderr}")
    ok(f"migrate: {migrated.stdout.strip()}")


def check_process(pid: int) -> None:
    """As the host sees the container's first process: uid and gid 10001 (the image's USER),
    no capability in any set, no privilege escalation, a read-only root filesystem."""
    status = dict(
        line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    for name in ("Uid", "Gid"):
        expect(set(status[name].split()) == {"10001"}, f"{name} is {status[name]}")
    capabilities = {name: status[name] for name in status if name.startswith("Cap")}
    expect(set(capabilities.values()) == {"0000000000000000"}, f"capabilities {capabilities}")
    expect(status["NoNewPrivs"] == "1", "privilege escalation is possible")
    root = [line.split() for line in Path(f"/proc/{pid}/mounts").read_text().splitlines()]
    (options,) = [fields[3] for fields in root if fields[1] == "/"]
    expect("ro" in options.split(","), f"the root filesystem is mounted {options}")
    ok("serve: uid 10001, gid 10001, no capabilities, no new privileges, read-only root")


def check_serve(image: str, database: list[str]) -> None:
    container = Container.start(image, options=database)
    try:
        pid = container.pid()
        check_process(pid)
        probe = subprocess.run(
            ["nsenter", f"--net=/proc/{pid}/ns/net", "--",
             sys.executable, "-m", "tests.image.probe", SERVICE],
            cwd=REPO, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        expect(probe.returncode == 0, "the service checks failed (above)")
        code, seconds = container.stop(STOP_GRACE_SECONDS)
        expect(code == 0, f"SIGTERM: exit {code} after {seconds:.1f} s")
        errors = [line for line in container.logs().splitlines() if '"level":"error"' in line]
        expect(not errors, f"SIGTERM: errors logged: {errors}")
        ok(f"SIGTERM: exit 0 after {seconds:.1f} s, no error logged")
    except CheckFailed as failure:
        raise CheckFailed(f"{failure}\nthe service's log:\n{container.logs()[-4000:]}") from None
    finally:
        container.remove()


def image_check(work: Path) -> None:
    install_missing_tools()
    base = base_image()
    note("building the image from the Dockerfile")
    began = time.monotonic()
    image = build(REPO, base, TAG, work / "build.log")
    note(f"built {TAG} ({image[:12]}) in {time.monotonic() - began:.1f} s")
    check_contents(image)
    check_no_embedded_server(image)
    with EmbeddedPostgres(work / "pg") as server:
        database = socket_options(server.url)
        check_migrate(image, database)
        check_serve(image, database)


def main() -> int:
    # Stopped from outside (make interrupted, a CI timeout): unwind, so the container and the
    # PostgreSQL server it started are stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    reason = why_it_cannot_run()
    if reason is not None:
        note(f"SKIPPED: {reason}")
        if os.environ.get("CI"):
            note("FAILED: CI must run this check, and here it cannot")
            return 1
        return 0
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="orders-image-check-") as work:
        try:
            image_check(Path(work))
        except CheckFailed as failure:
            note(f"FAILED: {failure}")
            return 1
    note(f"passed in {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
