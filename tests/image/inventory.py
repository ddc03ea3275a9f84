"""Runs inside the image, by the virtualenv's python, standard library only: prints as JSON
the distributions the virtualenv holds (name -> version), its size on disk in bytes, and each
compiled extension module it holds with why it failed to import (null when it imported)."""

from __future__ import annotations

import importlib
import json
import os
import sys
import sysconfig
from importlib import metadata
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path


def size_on_disk(top: str) -> int:
    """What `du` counts: allocated blocks, each file once."""
    return sum(
        os.lstat(os.path.join(folder, name)).st_blocks * 512
        for folder, subfolders, files in os.walk(top)
        for name in files + subfolders
    )


def extension_modules(site_packages: Path) -> list[str]:
    """The dotted names of the compiled extension modules under `site_packages`."""
    names = []
    for path in sorted(site_packages.rglob("*.so")):
        relative = path.relative_to(site_packages).as_posix()
        suffix = next(s for s in EXTENSION_SUFFIXES if relative.endswith(s))
        names.append(relative.removesuffix(suffix).replace("/", "."))
    return names


def import_error(module: str) -> str | None:
    """Why `module` does not import (the image strips its extensions), or None."""
    try:
        importlib.import_module(module)
    except Exception as error:  # any failure to import is the finding
        return repr(error)
    return None


def main() -> None:
    distributions = {d.metadata["Name"]: d.version for d in metadata.distributions()}
    modules = extension_modules(Path(sysconfig.get_paths()["purelib"]))
    extensions = {module: import_error(module) for module in modules}
    size = size_on_disk(sys.prefix)
    print(json.dumps({"distributions": distributions, "bytes": size, "extensions": extensions}))


if __name__ == "__main__":
    main()
