"""A readable summary of a py-spy speedscope profile: where the sampled CPU time went.

py-spy samples only threads that are running (not waiting in the event loop's poll), so the
shares are of busy time. C extensions (uvloop, httptools, asyncpg's protocol, msgspec) have no
Python frames: their time shows on the Python frame that called them.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Final

import msgspec

# The first matching fragment of a frame's file names its layer.
LAYERS: Final = (
    ("request log (logging)", ("/logging/", "/orders/logs.py", "observability.py")),
    ("prometheus", ("/prometheus_client/", "/litestar/plugins/prometheus/")),
    ("asyncpg", ("/asyncpg/",)),
    ("msgspec", ("/msgspec/",)),
    ("litestar", ("/litestar/",)),
    ("uvicorn / httptools", ("/uvicorn/", "/httptools/", "/h11/")),
    ("asyncio / uvloop", ("/asyncio/", "/uvloop/")),
    ("orders + projections (ours)", ("/orders/", "/projections/")),
)
TOP: Final = 20
SPINE: Final = 0.75
"""Frames on more of the busy time than this are the server's and framework's spine."""


class _Frame(msgspec.Struct):
    name: str
    file: str = ""
    line: int | None = None


class _Shared(msgspec.Struct):
    frames: list[_Frame]


class _Profile(msgspec.Struct):
    samples: list[list[int]]
    weights: list[float]


class _Speedscope(msgspec.Struct):
    shared: _Shared
    profiles: list[_Profile]


def layer(file: str) -> str:
    for name, fragments in LAYERS:
        if any(fragment in file for fragment in fragments):
            return name
    return "other (stdlib, ...)"


def _label(frame: _Frame) -> str:
    return f"{frame.name} ({'/'.join(Path(frame.file).parts[-2:])})"


def summarise(path: Path) -> str:
    """Busy time by layer (the innermost Python frame), by innermost function, and by
    function including what it calls."""
    document = msgspec.json.decode(path.read_bytes(), type=_Speedscope)
    frames = document.shared.frames
    by_layer: defaultdict[str, float] = defaultdict(float)
    self_time: defaultdict[str, float] = defaultdict(float)
    inclusive: defaultdict[str, float] = defaultdict(float)
    total = 0.0
    for profile in document.profiles:
        for stack, weight in zip(profile.samples, profile.weights, strict=True):
            if not stack:
                continue
            total += weight
            leaf = frames[stack[-1]]
            by_layer[layer(leaf.file)] += weight
            self_time[_label(leaf)] += weight
            for label in {_label(frames[i]) for i in stack}:
                inclusive[label] += weight
    if not total:
        return "no samples"

    def table(title: str, weights: dict[str, float]) -> str:
        top = sorted(weights.items(), key=lambda item: item[1], reverse=True)[:TOP]
        rows = [f"  {100 * n / total:5.1f}%  {label}" for label, n in top]
        return "\n".join([title, *rows])

    return "\n\n".join(
        [
            table(f"busy time by layer (innermost frame; {total:.1f} s sampled)", by_layer),
            table("innermost functions", self_time),
            table(
                "functions including callees (below the 75% every request passes through)",
                {k: v for k, v in inclusive.items() if v < SPINE * total},
            ),
        ]
    )
