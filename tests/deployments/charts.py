"""The Bitnami charts rendered offline with our values (deployments/charts.py), and lookups in
them and in what deployments/README.md tells an operator to run beside them."""

from __future__ import annotations

import re
from functools import cache

import yaml

from deployments.charts import Chart, Rendered, render
from tests.deployments.manifests import REPO, Manifest, pod_template, the

README = REPO / "deployments" / "README.md"


@cache
def rendered(chart: Chart, with_monitoring: bool = False) -> Rendered:
    values = [chart.values_dir / "values.yaml"]
    if with_monitoring:
        values.append(chart.values_dir / "monitoring.yaml")
    return render(chart, *values)


def values_of(chart: Chart, path: str) -> object:
    """The value at a dotted `path` in the chart's values.yaml."""
    node: object = yaml.safe_load((chart.values_dir / "values.yaml").read_text())
    for key in path.split("."):
        assert isinstance(node, dict), path
        node = node[key]
    return node


def container(statefulset: Manifest, name: str) -> Manifest:
    (found,) = [c for c in pod_template(statefulset)["spec"]["containers"] if c["name"] == name]
    assert isinstance(found, dict)
    return found


def env(container: Manifest) -> dict[str, str]:
    return {var["name"]: var.get("value", "") for var in container.get("env", [])}


def readme_secret(name: str) -> dict[str, str]:
    """Key -> value of the one `kubectl create secret generic <name>` in the README."""
    text = README.read_text().replace("\\\n", " ")
    (literals,) = re.findall(rf"create secret generic {name}((?: +--from-literal=\S+)+)", text)
    return dict(pair.split("=", 1) for pair in re.findall(r"--from-literal=(\S+)", literals))


def secret_value(overlay_manifests: tuple[Manifest, ...], name: str, key: str) -> str:
    """A key of a Secret an overlay ships (the charts' own Secrets are not ours)."""
    value = the(overlay_manifests, "Secret", name)["stringData"][key]
    assert isinstance(value, str), (name, key)
    return value
