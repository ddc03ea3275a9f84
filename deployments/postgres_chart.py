"""Renders the Bitnami PostgreSQL chart offline with our values, as `helm install` would.

No helm binary and no network: helm-python-sdk runs Helm's own Go engine from its wheel, over
the chart unpacked in shared/charts/ beside the repository (with its `common` dependency). The
chart is only read, never written.

    python -m deployments.postgres_chart values.yaml [more-values.yaml...] > rendered.yaml

ORDERS_POSTGRESQL_CHART names another directory holding the same chart version.
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
VALUES_DIR = REPO / "deployments" / "pg-helm-values"
# The version deployments/README.md pins (`helm install ... --version`).
CHART_VERSION = "17.1.0"
RELEASE = "orders-db"
NAMESPACE = "orders"
NOTES = "postgresql/templates/NOTES.txt"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    manifests: list[Manifest]
    # What `helm install` prints afterwards: the chart's warnings end up here.
    notes: str


def chart_path() -> Path:
    """ORDERS_POSTGRESQL_CHART, else the chart in the nearest shared/charts/ above the
    repository: beside it in CI, further up from a git worktree."""
    given = os.environ.get("ORDERS_POSTGRESQL_CHART")
    if given:
        return Path(given)
    relative = Path("shared", "charts", f"bitnami-postgresql-{CHART_VERSION}")
    for base in REPO.parents:
        if (base / relative / "Chart.yaml").exists():
            return base / relative
    return REPO.parent / relative


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


def render(*values_files: Path) -> Rendered:
    """The chart rendered for `helm install orders-db -n orders -f <each file>`."""
    path = chart_path()
    if not (path / "Chart.yaml").exists():
        raise FileNotFoundError(
            f"no chart at {path}: unpack bitnami/postgresql {CHART_VERSION} there "
            "or set ORDERS_POSTGRESQL_CHART"
        )
    values = merged(*(yaml.safe_load(file.read_text()) or {} for file in values_files))
    with helm_python.Chart.load(path) as chart:
        if chart.version != CHART_VERSION:
            raise ValueError(f"{path} holds chart {chart.version}, not {CHART_VERSION}")
        chart.validate_schema(values)
        templates = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    manifests = [
        doc
        for name, text in sorted(templates.items())
        if name.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    return Rendered(manifests, templates.get(NOTES, ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("values", nargs="+", type=Path, help="values files, in order")
    args = parser.parse_args(argv)
    try:
        rendered = render(*args.values)
    except (FileNotFoundError, ValueError) as error:
        print(f"deploy-check: {error}", file=sys.stderr)
        return 2
    yaml.safe_dump_all(rendered.manifests, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
