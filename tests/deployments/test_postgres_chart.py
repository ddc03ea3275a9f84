"""The Bitnami PostgreSQL chart (17.1.0), rendered offline with our values, gives our manifests
what they rely on: the host, port, database and user inside the minikube DATABASE_URL, and the
Secret (name and keys) that deployments/README.md creates before `helm install`.

`deployments/check.sh` validates the same renders against the Kubernetes and CRD schemas.
"""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

import yaml

from deployments.charts import NAMESPACE, POSTGRESQL
from tests.deployments.charts import (
    container,
    env,
    readme_secret,
    rendered,
    secret_value,
    values_of,
)
from tests.deployments.manifests import Manifest, find, pod_template, selected, the
from tests.deployments.manifests import render as render_overlay

PRIMARY = "orders-db-postgresql"


def database_url() -> str:
    """What the minikube overlay gives the service."""
    return secret_value(render_overlay("minikube"), "orders-database", "DATABASE_URL")


def primary() -> Manifest:
    return the(rendered(POSTGRESQL).manifests, "StatefulSet", PRIMARY)


def test_the_database_url_names_the_charts_service_port_database_and_user() -> None:
    url = urlsplit(database_url())
    service = the(rendered(POSTGRESQL).manifests, "Service", str(url.hostname))
    variables = env(container(primary(), "postgresql"))

    assert service["metadata"].get("namespace", NAMESPACE) == NAMESPACE
    assert url.port in {port["port"] for port in service["spec"]["ports"]}
    assert selected(service["spec"]["selector"], pod_template(primary())["metadata"]["labels"])
    assert variables["POSTGRES_USER"] == url.username
    assert variables["POSTGRES_DATABASE"] == url.path.lstrip("/")


def test_the_passwords_come_from_the_secret_the_readme_creates() -> None:
    volumes = {v["name"]: v for v in pod_template(primary())["spec"]["volumes"]}
    server = container(primary(), "postgresql")
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
    assert container(primary(), "postgresql")["resources"] == values_of(
        POSTGRESQL, "primary.resources"
    )
    assert container(primary(), "metrics")["resources"] == values_of(
        POSTGRESQL, "metrics.resources"
    )
    spec = pod_template(primary())["spec"]
    assert {c["name"] for c in spec.get("initContainers", []) + spec["containers"]} == {
        "postgresql",
        "metrics",
    }


def test_the_pinned_legacy_images_install_with_a_warning_and_no_insecure_flag() -> None:
    images = {c: container(primary(), c)["image"] for c in ("postgresql", "metrics")}
    values = yaml.safe_load((POSTGRESQL.values_dir / "values.yaml").read_text())

    assert "allowInsecureImages" not in values.get("global", {}).get("security", {})
    assert images == {
        "postgresql": f"docker.io/{values_of(POSTGRESQL, 'image.repository')}:"
        f"{values_of(POSTGRESQL, 'image.tag')}",
        "metrics": f"docker.io/{values_of(POSTGRESQL, 'metrics.image.repository')}:"
        f"{values_of(POSTGRESQL, 'metrics.image.tag')}",
    }
    for image in images.values():
        assert image.startswith("docker.io/bitnamilegacy/")
        assert image in rendered(POSTGRESQL).notes, "the chart warns about each substituted image"


def test_the_exporter_gets_a_servicemonitor_only_with_the_monitoring_values() -> None:
    plain = rendered(POSTGRESQL).manifests
    monitored = rendered(POSTGRESQL, with_monitoring=True).manifests
    monitor = the(monitored, "ServiceMonitor", PRIMARY)["spec"]
    service = the(monitored, "Service", f"{PRIMARY}-metrics")
    (endpoint,) = monitor["endpoints"]

    assert find(plain, "ServiceMonitor", PRIMARY) is None
    assert monitor["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert selected(monitor["selector"]["matchLabels"], service["metadata"]["labels"])
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}


def test_the_orders_workloads_at_full_scale_fit_in_max_connections() -> None:
    """The budget beside ORDERS_POOL_SIZE: every API pod the autoscaler may start with its pool
    and its three connections of its own, the projector and two Jobs with a pool each, and the
    publishers during a rollout, under what the server leaves beside the superuser's slots."""
    overlay = render_overlay("minikube")
    (config,) = [m for m in overlay if m["kind"] == "ConfigMap" and "ORDERS_POOL_SIZE" in m["data"]]
    pool = int(config["data"]["ORDERS_POOL_SIZE"])
    (autoscaler,) = [m for m in overlay if m["kind"] == "HorizontalPodAutoscaler"]
    server = the(rendered(POSTGRESQL).manifests, "ConfigMap", f"{PRIMARY}-extended-configuration")
    settings = dict(
        (name.strip(), value.strip())
        for name, value in (
            line.split("=", 1) for line in server["data"]["override.conf"].splitlines()
        )
    )
    superuser_reserved = 3  # PostgreSQL's default superuser_reserved_connections

    api = autoscaler["spec"]["maxReplicas"] * (pool + 3)
    projector_and_jobs = 3 * pool
    publishers = 4
    assert (
        api + projector_and_jobs + publishers
        <= int(settings["max_connections"]) - superuser_reserved
    )
