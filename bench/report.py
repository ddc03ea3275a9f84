"""The API benchmark's outputs: one table, the targets, a JSON document and a PNG chart."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import msgspec

from bench.load import Measurement
from bench.scenarios import CREATES_AGAIN
from bench.variants import BASELINE

TARGET_LEVEL: Final = 64
"""The connection count the targets are judged at."""


class Target(msgspec.Struct, frozen=True):
    name: str
    value: float
    goal: str
    met: bool


class VariantRatio(msgspec.Struct, frozen=True, kw_only=True):
    """A variant's rate beside that of the variant it is compared with (`versus`, the
    baseline unless the variant says), same scenario and connections, same run."""

    variant: str
    scenario: str
    connections: int
    rate: float
    baseline_rate: float
    """The rate of `versus`."""
    ratio: float
    versus: str = BASELINE.name


LIFECYCLE_PAIRS: Final = (
    ("pays", ("creates", CREATES_AGAIN)),
    ("pay replays", ("replays",)),
)
"""Each lifecycle scenario and the create scenarios it is judged against: the mean of those
measured at its connection count (the pays run between two runs of creates)."""
LIFECYCLE_RATIO: Final = 0.8
LIFECYCLE_P99_RATIO: Final = 2.0


class LifecycleRatio(msgspec.Struct, frozen=True, kw_only=True):
    """A lifecycle command's rate and p99 beside those of its create scenario, same
    connections, same run, with the CPU each costs."""

    scenario: str
    compared_with: str
    connections: int
    rate: float
    create_rate: float
    """The mean of `create_rates`."""
    create_rates: list[float]
    """Each run of the scenarios compared with, in the order they ran."""
    ratio: float
    p99_ms: float
    create_p99_ms: float
    service_cpu_ms: float | None
    postgres_cpu_ms: float | None
    create_service_cpu_ms: float | None
    create_postgres_cpu_ms: float | None


class Report(msgspec.Struct, kw_only=True):
    generator: str
    seconds: float
    workers: int
    pool_size: int
    commit: str | None
    results: list[Measurement]
    ceilings: list[Measurement]
    targets: list[Target]
    variants: list[VariantRatio] = msgspec.field(default_factory=list)
    lifecycle: list[LifecycleRatio] = msgspec.field(default_factory=list)
    bulk_load_seconds: float | None = None


def save_json(path: Path, value: object) -> None:
    """Write `value` as indented JSON to `path` (creating bench/results/) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(value)) + b"\n")
    print(f"written to {path}", file=sys.stderr)


def _find(
    rows: list[Measurement], scenario: str, level: int, variant: str = BASELINE.name
) -> Measurement | None:
    return next(
        (
            r
            for r in rows
            if r.scenario == scenario and r.connections == level and r.variant == variant
        ),
        None,
    )


def variant_ratios(
    results: list[Measurement], versus: Mapping[str, str] | None = None
) -> list[VariantRatio]:
    """Each variant's rates as ratios to those of the variant `versus` names for it (the
    baseline when it names none)."""
    found: list[VariantRatio] = []
    for row in results:
        other = (versus or {}).get(row.variant, BASELINE.name)
        compared = _find(results, row.scenario, row.connections, other)
        if row.variant != BASELINE.name and compared is not None and compared.rate:
            found.append(
                VariantRatio(
                    variant=row.variant,
                    scenario=row.scenario,
                    connections=row.connections,
                    rate=row.rate,
                    baseline_rate=compared.rate,
                    ratio=row.rate / compared.rate,
                    versus=other,
                )
            )
    return found


def lifecycle_ratios(results: list[Measurement]) -> list[LifecycleRatio]:
    """Each lifecycle scenario measured (baseline) beside its create scenario."""
    found: list[LifecycleRatio] = []
    for scenario, compared_with in LIFECYCLE_PAIRS:
        for row in results:
            if row.scenario != scenario or row.variant != BASELINE.name:
                continue
            creates = [
                create
                for name in compared_with
                if (create := _find(results, name, row.connections)) is not None
            ]
            create_rate = _mean([c.rate for c in creates])
            if create_rate is None or not create_rate:
                continue
            found.append(
                LifecycleRatio(
                    scenario=scenario,
                    compared_with=" and ".join(c.scenario for c in creates),
                    connections=row.connections,
                    rate=row.rate,
                    create_rate=create_rate,
                    create_rates=[c.rate for c in creates],
                    ratio=row.rate / create_rate,
                    p99_ms=row.p99_ms,
                    create_p99_ms=_mean([c.p99_ms for c in creates]) or 0.0,
                    service_cpu_ms=row.service_cpu_ms,
                    postgres_cpu_ms=row.postgres_cpu_ms,
                    create_service_cpu_ms=_mean([c.service_cpu_ms for c in creates]),
                    create_postgres_cpu_ms=_mean([c.postgres_cpu_ms for c in creates]),
                )
            )
    return found


def _mean(values: list[float | None]) -> float | None:
    """The mean of `values`; None when there are none, or any is unknown."""
    known = [v for v in values if v is not None]
    if not known or len(known) < len(values):
        return None
    return sum(known) / len(known)


def lifecycle_targets(results: list[Measurement]) -> list[Target]:
    """Issue 18's goals, at every connection count measured: each lifecycle scenario at least
    LIFECYCLE_RATIO of its create scenario's rate, its p99 under LIFECYCLE_P99_RATIO times
    the create's."""
    found: list[Target] = []
    for r in lifecycle_ratios(results):
        found.append(
            Target(
                f"{r.scenario} @{r.connections}: rate / {r.compared_with} rate",
                r.ratio,
                f">= {LIFECYCLE_RATIO}",
                r.ratio >= LIFECYCLE_RATIO,
            )
        )
        limit = LIFECYCLE_P99_RATIO * r.create_p99_ms
        found.append(
            Target(
                f"{r.scenario} @{r.connections}: p99 ms (< {LIFECYCLE_P99_RATIO:g} x "
                f"{r.compared_with} p99 {r.create_p99_ms:.2f})",
                r.p99_ms,
                f"< {limit:.2f}",
                r.p99_ms < limit,
            )
        )
    return found


def variant_goals(ratios: list[VariantRatio], goals: Mapping[str, float]) -> list[Target]:
    """The replay ratios of the variants that have a goal, at every connection count."""
    return [
        Target(
            f"replays @{r.connections}: {r.variant} / {r.versus}",
            r.ratio,
            f">= {goals[r.variant]}",
            r.ratio >= goals[r.variant],
        )
        for r in ratios
        if r.variant in goals and r.scenario == "replays"
    ]


def targets(results: list[Measurement], level: int = TARGET_LEVEL) -> list[Target]:
    """The goals of issues 7, 11 and 18 that this run has the measurements for (baseline
    only)."""
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
    creates = _find(results, "creates", level)
    if creates is not None:
        for side, cpu_ms, limit in (
            ("PostgreSQL", creates.postgres_cpu_ms, 0.10),
            ("service", creates.service_cpu_ms, 0.30),
        ):
            if cpu_ms is not None:
                found.append(
                    Target(
                        f"creates @{level}: {side} CPU ms per create",
                        cpu_ms,
                        f"<= {limit}",
                        cpu_ms <= limit,
                    )
                )
    small, large = _find(results, "count @1k", level), _find(results, "count @1M", level)
    if small is not None and large is not None:
        ratio = large.rate / small.rate
        found.append(
            Target(f"count @{level}: rate at 1M / rate at 1k", ratio, ">= 0.5", ratio >= 0.5)
        )
    found += lifecycle_targets(results)
    errors = sum(r.errors for r in results)
    found.append(Target("errors, all scenarios", errors, "== 0", errors == 0))
    return found


def number(value: float | None, digits: int) -> str:
    """`value` with `digits` decimals and thousands separators; "-" for none."""
    return "-" if value is None else f"{value:,.{digits}f}"


def table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    """A Markdown table, its columns padded so that it reads as well in a terminal: the first
    `text_columns` left-aligned, the numbers after them right-aligned."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    left = [i < text_columns for i in range(len(widths))]

    def line(cells: list[str]) -> str:
        padded = (
            c.ljust(w) if is_left else c.rjust(w)
            for c, w, is_left in zip(cells, widths, left, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        ":" + "-" * (w + 1) if is_left else "-" * (w + 1) + ":"
        for w, is_left in zip(widths, left, strict=True)
    )
    return "\n".join([line(header), rule + "|", *(line(row) for row in rows)])


def render(report: Report) -> str:
    """The whole report as Markdown: ready to paste into a note, and printed as is."""
    measured = table(
        [
            "scenario",
            "variant",
            "conns",
            "orders",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "service CPU ms/req",
            "PostgreSQL CPU ms/req",
            "req/s per PostgreSQL core",
            "ratio to ceiling",
        ],
        [
            [
                r.scenario,
                r.variant if r.generator != "pgbench" else "",
                str(r.connections),
                number(r.orders, 0),
                number(r.rate, 0),
                number(r.p50_ms, 2),
                number(r.p99_ms, 2),
                str(r.errors),
                number(r.service_cpu_ms, 3),
                number(r.postgres_cpu_ms, 3),
                number(r.per_postgres_core, 0),
                "" if r.ceiling is None else f"{number(r.ratio, 3)} x {r.ceiling}",
            ]
            for r in [*report.results, *report.ceilings]
        ],
        text_columns=2,
    )
    sections = [
        f"orders API benchmark: commit {report.commit or '?'}, {report.generator}, "
        f"{report.seconds:g} s per run, {report.workers} workers x pool {report.pool_size}",
        measured,
    ]
    if report.variants:
        sections.append(
            table(
                ["variant", "scenario", "versus", "conns", "req/s", "versus req/s", "ratio"],
                [
                    [
                        v.variant,
                        v.scenario,
                        v.versus,
                        str(v.connections),
                        number(v.rate, 0),
                        number(v.baseline_rate, 0),
                        number(v.ratio, 3),
                    ]
                    for v in report.variants
                ],
                text_columns=3,
            )
        )
    if report.lifecycle:
        sections.append(
            table(
                [
                    "command",
                    "compared with",
                    "conns",
                    "req/s",
                    "its req/s",
                    "ratio",
                    "p99 ms",
                    "its p99 ms",
                    "service CPU ms/cmd",
                    "its service CPU",
                    "PostgreSQL CPU ms/cmd",
                    "its PostgreSQL CPU",
                ],
                [
                    [
                        r.scenario,
                        r.compared_with,
                        str(r.connections),
                        number(r.rate, 0),
                        _rates(r),
                        number(r.ratio, 3),
                        number(r.p99_ms, 2),
                        number(r.create_p99_ms, 2),
                        number(r.service_cpu_ms, 3),
                        number(r.create_service_cpu_ms, 3),
                        number(r.postgres_cpu_ms, 3),
                        number(r.create_postgres_cpu_ms, 3),
                    ]
                    for r in report.lifecycle
                ],
                text_columns=2,
            )
        )
    sections.append(checklist(report.targets))
    return "\n\n".join(sections)


def _rates(r: LifecycleRatio) -> str:
    """The mean rate compared with, and each run of it when there were several."""
    if len(r.create_rates) < 2:
        return number(r.create_rate, 0)
    each = " / ".join(number(rate, 0) for rate in r.create_rates)
    return f"{number(r.create_rate, 0)} ({each})"


def checklist(found: list[Target]) -> str:
    """The targets as a Markdown list, each measured, met or not."""
    return "\n".join(
        f"- {t.name}: {t.value:,.3f} (goal {t.goal}): {'met' if t.met else 'NOT MET'}"
        for t in found
    )


def write_json(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(report)) + b"\n")


def write_text(text: str, path: Path) -> None:
    """A rendered report (Markdown, for a note), next to the JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


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
