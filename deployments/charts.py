"""Renders a third-party Helm chart offline with our values, as `helm install` would.

No helm binary and no network: helm-python-sdk runs Helm's own Go engine from its wheel, over
the chart unpacked in shared/charts/ beside the repository (with its `common` dependency). The
chart is only read, never written. Two charts, each pinned to the version deployments/README.md
installs and given the release name our manifests expect:

    python -m deployments.charts postgresql values.yaml [more-values.yaml...] > rendered.yaml
    python -m deployments.charts rabbitmq values.yaml [more-values.yaml...] > rendered.yaml

ORDERS_POSTGRESQL_CHART (ORDERS_RABBITMQ_CHART) names another directory holding the same chart
version.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "orders"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Chart:
    """A Bitnami chart at the version deployments/README.md pins (`helm install --version`),
    installed as `release` with the values files in `values_dir`."""

    name: str
    version: str
    release: str
    values_dir: Path

    @property
    def path(self) -> Path:
        """ORDERS_<NAME>_CHART, else the chart in the nearest shared/charts/ above the
        repository: beside it in CI, further up from a git worktree."""
        given = os.environ.get(f"ORDERS_{self.name.upper()}_CHART")
        if given:
            return Path(given)
        relative = Path("shared", "charts", f"bitnami-{self.name}-{self.version}")
        for base in REPO.parents:
            if (base / relative / "Chart.yaml").exists():
                return base / relative
        return REPO.parent / relative


POSTGRESQL = Chart("postgresql", "17.1.0", "orders-db", REPO / "deployments" / "pg-helm-values")
RABBITMQ = Chart(
    "rabbitmq", "16.0.16", "orders-broker", REPO / "deployments" / "rabbitmq-helm-values"
)
CHARTS = {chart.name: chart for chart in (POSTGRESQL, RABBITMQ)}


@dataclass(frozen=True)
class Rendered:
    manifests: list[Manifest]
    # What `helm install` prints afterwards: the chart's warnings end up here.
    notes: str


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Values files combined as Helm combines several `-f`: maps merge, later files win."""
    result: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = merged(result[key], value)
            else:
                result[key] = value
    return result


def render(chart: Chart, *values_files: Path) -> Rendered:
    """The chart rendered for `helm install <release> -n orders -f <each file>`."""
    path = chart.path
    if not (path / "Chart.yaml").exists():
        raise FileNotFoundError(
            f"no chart at {path}: unpack bitnami/{chart.name} {chart.version} there "
            f"or set ORDERS_{chart.name.upper()}_CHART"
        )
    values = merged(*(yaml.safe_load(file.read_text()) or {} for file in values_files))
    with helm_python.Chart.load(path) as loaded:
        if loaded.version != chart.version:
            raise ValueError(f"{path} holds chart {loaded.version}, not {chart.version}")
        loaded.validate_schema(values)
        templates = loaded.render(values, name=chart.release, namespace=NAMESPACE, is_install=True)
    manifests = [
        doc
        for name, text in sorted(templates.items())
        if name.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    return Rendered(manifests, templates.get(f"{chart.name}/templates/NOTES.txt", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chart", choices=sorted(CHARTS), help="which chart")
    parser.add_argument("values", nargs="+", type=Path, help="values files, in order")
    args = parser.parse_args(argv)
    try:
        rendered = render(CHARTS[args.chart], *args.values)
    except (FileNotFoundError, ValueError) as error:
        print(f"deploy-check: {error}", file=sys.stderr)
        return 2
    yaml.safe_dump_all(rendered.manifests, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
