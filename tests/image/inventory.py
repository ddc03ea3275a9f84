"""Runs inside the image, by the virtualenv's python, standard library only: prints as JSON
the distributions the virtualenv holds (name -> version) and its size on disk in bytes."""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata


def size_on_disk(top: str) -> int:
    """What `du` counts: allocated blocks, each file once."""
    return sum(
        os.lstat(os.path.join(folder, name)).st_blocks * 512
        for folder, subfolders, files in os.walk(top)
        for name in files + subfolders
    )


def main() -> None:
    distributions = {d.metadata["Name"]: d.version for d in metadata.distributions()}
    print(json.dumps({"distributions": distributions, "bytes": size_on_disk(sys.prefix)}))


if __name__ == "__main__":
    main()
