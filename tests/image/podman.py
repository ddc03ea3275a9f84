"""podman as this kind of machine needs it, and the image run the way Kubernetes runs it.

Facts found on these VMs: crun refuses their hybrid cgroups, so every command uses runc; the
default ulimits ask for more than the VM grants; HTTPS to the package index passes a
re-signing proxy that only the host's CA bundle trusts, so the build sees that bundle.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.image.report import CheckFailed

_PODMAN = ("podman", "--runtime", "runc")
_ULIMITS = ("--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768")
_HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

# The manifests' securityContext: read-only root filesystem (podman's tmpfs on /tmp stands in
# for their emptyDir), every capability dropped, no privilege escalation. No network at all:
# the database comes through its socket file, and the checks reach the service on the
# container's own loopback, so nothing is published on the host.
_AS_KUBERNETES_RUNS_IT = (
    "--read-only",
    "--cap-drop", "all",
    "--security-opt", "no-new-privileges",
    "--network", "none",
)  # fmt: skip


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a podman command; its output is captured. `check`: fail with what it printed."""
    result = subprocess.run(
        [*_PODMAN, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    if check and result.returncode != 0:
        raise CheckFailed(f"podman {' '.join(args[:2])} failed:\n{result.stderr[-4000:]}")
    return result


def image_id(name: str) -> str | None:
    result = podman("image", "inspect", "--format", "{{.Id}}", name, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def build(context: Path, base_image: str, tag: str, log: Path) -> str:
    """Build the Dockerfile in `context` on `base_image`; return the new image's id. The image
    this replaces under `tag` is removed, so repeated runs do not fill the disk; the layers
    that did not change stay in the store as the next build's cache."""
    previous = image_id(tag)
    id_file = log.with_suffix(".id")
    command = [*_PODMAN, "build", *_ULIMITS, "--build-arg", f"PYTHON_IMAGE={base_image}"]
    if _HOST_CA_BUNDLE.exists():
        command += ["--volume", f"{_HOST_CA_BUNDLE}:{_HOST_CA_BUNDLE}:ro"]
    command += ["--iidfile", str(id_file), "--tag", tag, str(context)]
    with log.open("w") as output:
        built = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, check=False)
    if built.returncode != 0:
        raise CheckFailed(f"the build failed; the end of its log:\n{log.read_text()[-6000:]}")
    new = id_file.read_text().strip().removeprefix("sha256:")
    if previous and previous != new:
        podman("rmi", previous, check=False)  # still in use by someone else's container: kept
    return new


def run_once(
    image: str, args: Sequence[str], *, options: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """Run the image once, as Kubernetes would, and return how it ended."""
    return podman("run", "--rm", *_ULIMITS, *_AS_KUBERNETES_RUNS_IT, *options, image, *args,
                  check=False)  # fmt: skip


@dataclass
class Container:
    """A container started in the background; `remove()` ends it, whatever state it is in."""

    id: str

    @classmethod
    def start(cls, image: str, *, options: Sequence[str] = ()) -> Container:
        started = podman("run", "--detach", *_ULIMITS, *_AS_KUBERNETES_RUNS_IT, *options, image)
        return cls(started.stdout.strip())

    def pid(self) -> int:
        """The container's first process, as the host sees it."""
        return int(podman("inspect", "--format", "{{.State.Pid}}", self.id).stdout)

    def stop(self, grace_seconds: int) -> tuple[int, float]:
        """Send the image's STOPSIGNAL (SIGKILL after `grace_seconds`); return the exit code
        and how long it took to exit."""
        began = time.monotonic()
        podman("stop", "--time", str(grace_seconds), self.id)
        elapsed = time.monotonic() - began
        return int(podman("inspect", "--format", "{{.State.ExitCode}}", self.id).stdout), elapsed

    def logs(self) -> str:
        result = podman("logs", self.id, check=False)
        return result.stdout + result.stderr

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.id, check=False)
