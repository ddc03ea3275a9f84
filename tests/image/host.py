"""What `make image-check` needs from this machine: root, the container tools (installed from
Debian when missing, as CI does), and a base image to build on."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.image.report import CheckFailed, note

REPO = Path(__file__).resolve().parents[2]
BASE_SCRIPT = REPO / "deployments" / "image" / "base.sh"

# command -> the Debian package that brings it. runc, not crun: crun refuses this VM's hybrid
# cgroups. nsenter lets the checks into the container's network namespace.
TOOLS = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap", "nsenter": "util-linux"}


def why_it_cannot_run() -> str | None:
    """Why this machine cannot run the check, or None when it can (after installing tools)."""
    if os.geteuid() != 0:
        return (
            "it needs root (debootstrap, podman with runc, nsenter into the container); "
            "run `make image-check` as root, as CI does"
        )
    if missing_tools() and shutil.which("apt-get") is None:
        return f"{', '.join(missing_tools())} missing, and no apt-get to install them with"
    return None


def missing_tools() -> list[str]:
    return [command for command in TOOLS if shutil.which(command) is None]


def install_missing_tools() -> None:
    missing = missing_tools()
    if not missing:
        return
    packages = sorted({TOOLS[command] for command in missing})
    note(f"installing {' '.join(packages)} from Debian")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise CheckFailed(f"{' '.join(command)} failed:\n{result.stderr[-4000:]}")


def base_image() -> str:
    """`PYTHON_IMAGE` when set (e.g. docker.io/library/python:3.11-slim, where a registry is
    reachable), else the debootstrap'd stand-in, built only when its script changed."""
    given = os.environ.get("PYTHON_IMAGE")
    if given:
        note(f"base: {given} (PYTHON_IMAGE)")
        return given
    began = time.monotonic()
    made = subprocess.run(
        ["bash", str(BASE_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False
    )
    if made.returncode != 0:
        raise CheckFailed(f"{BASE_SCRIPT.relative_to(REPO)} failed (its output is above)")
    name = made.stdout.strip()
    note(f"base: {name} ({time.monotonic() - began:.1f} s)")
    return name
