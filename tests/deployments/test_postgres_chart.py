"""The Bitnami PostgreSQL chart (17.1.0), rendered offline with our values, gives our manifests
what they rely on: the host, port, database and user inside the minikube DATABASE_URL, and the
Secret (name and keys) that deployments/README.md creates before `helm install`.

`deployments/check.sh` validates the same renders against the Kubernetes and CRD schemas.
"""

from __future__ import annotations

import posixpath
import re
from functools import cache
from urllib.parse import urlsplit

import yaml

from deployments.postgres_chart import CHART_VERSION, NAMESPACE, VALUES_DIR, Rendered, render
from tests.deployments.manifests import REPO, Manifest, find, pod_template, selected, the
from tests.deployments.manifests import render as render_overlay

VALUES = VALUES_DIR / "values.yaml"
MONITORING_VALUES = VALUES_DIR / "monitoring.yaml"
README = REPO / "deployments" / "README.md"
PRIMARY = "orders-db-postgresql"


@cache
def rendered(with_monitoring: bool = False) -> Rendered:
    return render(VALUES, MONITORING_VALUES) if with_monitoring else render(VALUES)


def database_url() -> str:
    """What the minikube overlay gives the service (the chart's own Secret is not ours)."""
    secret = the(render_overlay("minikube"), "Secret", "orders-database")
    url: str = secret["stringData"]["DATABASE_URL"]
    return url


def container(name: str) -> Manifest:
    statefulset = the(rendered().manifests, "StatefulSet", PRIMARY)
    (found,) = [c for c in pod_template(statefulset)["spec"]["containers"] if c["name"] == name]
    return found


def env(container: Manifest) -> dict[str, str]:
    return {var["name"]: var.get("value", "") for var in container.get("env", [])}


def readme_secret(name: str) -> dict[str, str]:
    """Key -> value of the one `kubectl create secret generic <name>` in the README."""
    text = README.read_text().replace("\\\n", " ")
    (literals,) = re.findall(rf"create secret generic {name}((?: +--from-literal=\S+)+)", text)
    return dict(pair.split("=", 1) for pair in re.findall(r"--from-literal=(\S+)", literals))


def values_of(path: str) -> object:
    node: object = yaml.safe_load(VALUES.read_text())
    for key in path.split("."):
        assert isinstance(node, dict), path
        node = node[key]
    return node


def test_the_database_url_names_the_charts_service_port_database_and_user() -> None:
    url = urlsplit(database_url())
    manifests = rendered().manifests
    service = the(manifests, "Service", str(url.hostname))
    statefulset = the(manifests, "StatefulSet", PRIMARY)
    variables = env(container("postgresql"))

    assert service["metadata"].get("namespace", NAMESPACE) == NAMESPACE
    assert url.port in {port["port"] for port in service["spec"]["ports"]}
    assert selected(service["spec"]["selector"], pod_template(statefulset)["metadata"]["labels"])
    assert variables["POSTGRES_USER"] == url.username
    assert variables["POSTGRES_DATABASE"] == url.path.lstrip("/")


def test_the_passwords_come_from_the_secret_the_readme_creates() -> None:
    statefulset = the(rendered().manifests, "StatefulSet", PRIMARY)
    volumes = {v["name"]: v for v in pod_template(statefulset)["spec"]["volumes"]}
    server = container("postgresql")
    (mount,) = [m for m in server["volumeMounts"] if "secret" in volumes.get(m["name"], {})]
    variables = env(server)

    def key_of(variable: str) -> str:
        path = variables[variable]
        assert posixpath.dirname(path) == mount["mountPath"].rstrip("/"), variable
        return posixpath.basename(path)

    literals = readme_secret(volumes[mount["name"]]["secret"]["secretName"])
    assert literals[key_of("POSTGRES_PASSWORD_FILE")] == urlsplit(database_url()).password
    assert key_of("POSTGRES_POSTGRES_PASSWORD_FILE") in literals


def test_every_container_gets_the_resources_our_values_set_not_a_preset() -> None:
    assert container("postgresql")["resources"] == values_of("primary.resources")
    assert container("metrics")["resources"] == values_of("metrics.resources")
    statefulset = the(rendered().manifests, "StatefulSet", PRIMARY)
    spec = pod_template(statefulset)["spec"]
    assert {c["name"] for c in spec.get("initContainers", []) + spec["containers"]} == {
        "postgresql",
        "metrics",
    }


def test_the_pinned_legacy_images_install_with_a_warning_and_no_insecure_flag() -> None:
    images = {c: container(c)["image"] for c in ("postgresql", "metrics")}
    security = yaml.safe_load(VALUES.read_text()).get("global", {}).get("security", {})

    assert "allowInsecureImages" not in security
    assert images == {
        "postgresql": f"docker.io/{values_of('image.repository')}:{values_of('image.tag')}",
        "metrics": f"docker.io/{values_of('metrics.image.repository')}:"
        f"{values_of('metrics.image.tag')}",
    }
    for image in images.values():
        assert image.startswith("docker.io/bitnamilegacy/")
        assert image in rendered().notes, "the chart warns about each substituted image"


def test_the_exporter_gets_a_servicemonitor_only_with_the_monitoring_values() -> None:
    plain, monitored = rendered().manifests, rendered(with_monitoring=True).manifests
    monitor = the(monitored, "ServiceMonitor", PRIMARY)["spec"]
    service = the(monitored, "Service", f"{PRIMARY}-metrics")
    (endpoint,) = monitor["endpoints"]

    assert find(plain, "ServiceMonitor", PRIMARY) is None
    assert monitor["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert selected(monitor["selector"]["matchLabels"], service["metadata"]["labels"])
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}


def test_every_helm_install_of_the_chart_pins_its_version() -> None:
    for path in (README, VALUES, MONITORING_VALUES):
        text = path.read_text().replace("\\\n", " ")
        commands = re.findall(r"helm (?:install|upgrade)[^\n]*bitnami/postgresql[^\n]*", text)
        assert commands, path
        for command in commands:
            assert f"--version {CHART_VERSION}" in command, f"{path.name}: {command}"
