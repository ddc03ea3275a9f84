"""The API benchmark's outputs: one table, the targets, a JSON document and a PNG chart."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

import msgspec

from bench.load import Measurement

TARGET_LEVEL: Final = 64
"""The connection count the targets are judged at."""


class Target(msgspec.Struct, frozen=True):
    name: str
    value: float
    goal: str
    met: bool


class Report(msgspec.Struct, kw_only=True):
    generator: str
    seconds: float
    workers: int
    pool_size: int
    commit: str | None
    results: list[Measurement]
    ceilings: list[Measurement]
    targets: list[Target]
    bulk_load_seconds: float | None = None


def save_json(path: Path, value: object) -> None:
    """Write `value` as indented JSON to `path` (creating bench/results/) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(value)) + b"\n")
    print(f"written to {path}", file=sys.stderr)


def _find(rows: list[Measurement], scenario: str, level: int) -> Measurement | None:
    return next((r for r in rows if r.scenario == scenario and r.connections == level), None)


def targets(results: list[Measurement], level: int = TARGET_LEVEL) -> list[Target]:
    """The goals of issue 7 that this run has the measurements for."""
    found: list[Target] = []
    for scenario, share in (("creates", 0.20), ("replays", 0.15)):
        row = _find(results, scenario, level)
        if row is None:
            continue
        if row.ratio is not None:
            found.append(
                Target(
                    f"{scenario} @{level}: rate / {row.ceiling}",
                    row.ratio,
                    f">= {share}",
                    row.ratio >= share,
                )
            )
        found.append(Target(f"{scenario} @{level}: p99 ms", row.p99_ms, "< 50", row.p99_ms < 50))
    small, large = _find(results, "count @1k", level), _find(results, "count @1M", level)
    if small is not None and large is not None:
        ratio = large.rate / small.rate
        found.append(
            Target(f"count @{level}: rate at 1M / rate at 1k", ratio, ">= 0.5", ratio >= 0.5)
        )
    errors = sum(r.errors for r in results)
    found.append(Target("errors, all scenarios", errors, "== 0", errors == 0))
    return found


def render(report: Report) -> str:
    def number(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [
        f"{'scenario':<16} {'conns':>5} {'orders':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6}  {'ratio to ceiling':<24}"
    ]
    for r in [*report.results, *report.ceilings]:
        ceiling = "" if r.ceiling is None else f"{number(r.ratio, 3)} x {r.ceiling}"
        orders = "" if r.orders is None else f"{r.orders:,}"
        lines.append(
            f"{r.scenario:<16} {r.connections:>5} {orders:>9} {r.rate:>9.0f} {r.p50_ms:>8.2f} "
            f"{r.p99_ms:>8.2f} {r.errors:>6}  {ceiling:<24}"
        )
    lines.append("")
    for t in report.targets:
        mark = "met" if t.met else "NOT MET"
        lines.append(f"target {t.name:<42} {t.value:>10.3f} (goal {t.goal}): {mark}")
    return "\n".join(lines)


def write_json(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(report)) + b"\n")


def write_chart(report: Report, path: Path) -> None:
    """Requests per second (log scale, ceilings as lines) and p99 latency per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(r.scenario for r in report.results))
    levels = sorted({r.connections for r in report.results})
    width = 0.8 / max(1, len(levels))
    figure, (rates, p99s) = plt.subplots(1, 2, figsize=(14, 5))
    for i, level in enumerate(levels):
        rows = [_find(report.results, s, level) for s in scenarios]
        xs = [x + i * width for x in range(len(scenarios))]
        rates.bar(xs, [r.rate if r else 0 for r in rows], width, label=f"{level} connections")
        p99s.bar(xs, [r.p99_ms if r else 0 for r in rows], width, label=f"{level} connections")
    for ceiling in report.ceilings:
        if ceiling.connections == max(levels, default=0):
            rates.axhline(ceiling.rate, linestyle="--", linewidth=1, color="grey")
            rates.annotate(ceiling.scenario, (0, ceiling.rate), fontsize=8, va="bottom")
    p99s.axhline(50, linestyle="--", linewidth=1, color="red")
    ticks = [x + width * (len(levels) - 1) / 2 for x in range(len(scenarios))]
    for axes, title in ((rates, "requests/s (log)"), (p99s, "p99 latency, ms (target < 50)")):
        axes.set_xticks(ticks, scenarios, rotation=30, ha="right")
        axes.set_title(title)
        axes.legend(fontsize=8)
    rates.set_yscale("log")
    figure.suptitle(
        f"orders API, {report.workers} workers x pool {report.pool_size}, "
        f"{report.generator}, {report.seconds:.0f} s per run"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
