"""The previous release, runnable beside this one: its source taken from git history at a
pinned commit, run by this interpreter with the packages installed today."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.processes.services import PYTHON, REPOSITORY, RUN_CLI, Release

# The release this one replaces in a rolling upgrade. Each release bumps it to the previous
# landed main commit, the one it was branched from (today: 3c9ff55).
PREVIOUS_RELEASE = "3c9ff55d4e6c89a2c2a8f90561c9b757340aac23"

PACKAGES = ("orders", "projections")
_IMPORT_EVERY_MODULE = """
import importlib, pathlib, sys
root = pathlib.Path(sys.argv[1]).resolve()
for package in sys.argv[2:]:
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        origin = pathlib.Path(importlib.import_module(name).__file__).resolve()
        if not origin.is_relative_to(root):
            sys.exit(f"{name} was imported from {origin}, not from {root}")
"""


def previous_release(workdir: Path) -> Release:
    """The previous release's `orders` command, its source extracted into `workdir`.

    Fails, never skips, when the pinned commit is not in this clone: the check that upgrades
    roll is not optional. Fails too if its code does not import with today's packages.
    """
    source = workdir / f"orders-{PREVIOUS_RELEASE[:7]}"
    source.mkdir()
    _extract(source)
    release = Release((*PYTHON, "-c", RUN_CLI), env={"PYTHONPATH": str(source)})
    imported = subprocess.run(
        [*PYTHON, "-c", _IMPORT_EVERY_MODULE, str(source), *PACKAGES],
        env={**os.environ, **release.env},
        capture_output=True,
        text=True,
        check=False,
    )
    if imported.returncode != 0:
        pytest.fail(
            f"the previous release ({PREVIOUS_RELEASE}) does not import with the packages "
            f"installed today:\n{imported.stdout}{imported.stderr}",
            pytrace=False,
        )
    return release


def _extract(source: Path) -> None:
    """`git archive <commit> orders projections | tar -x` into `source`."""
    git = ["git", "-C", str(REPOSITORY)]
    found = subprocess.run(
        [*git, "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:
        pytest.fail(
            f"the previous release, commit {PREVIOUS_RELEASE} (PREVIOUS_RELEASE in {__file__}), "
            f"is not in the git history of {REPOSITORY}: the rolling-upgrade test needs a "
            "clone with main's full history (not shallow), or PREVIOUS_RELEASE bumped to a "
            "commit of main",
            pytrace=False,
        )
    archive = subprocess.run(
        [*git, "archive", "--format=tar", PREVIOUS_RELEASE, *PACKAGES],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
