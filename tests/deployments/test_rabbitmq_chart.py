"""The Bitnami RabbitMQ chart (16.0.16), rendered offline with our values, gives the publisher
what it relies on: the host, port and user inside the minikube-publishing ORDERS_AMQP_URL, the
Secret (name and keys) that deployments/README.md creates before `helm install`, and a cluster
on which quorum queues survive the loss of a node.

`deployments/check.sh` validates the same renders against the Kubernetes and CRD schemas.
"""

from __future__ import annotations

import base64
import posixpath
from urllib.parse import urlsplit

from deployments.charts import NAMESPACE, RABBITMQ
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

NODES = "orders-broker-rabbitmq"


def amqp_url() -> str:
    """What the minikube-publishing overlay gives the publisher."""
    return secret_value(render_overlay("minikube-publishing"), "orders-amqp", "ORDERS_AMQP_URL")


def nodes() -> Manifest:
    return the(rendered(RABBITMQ).manifests, "StatefulSet", NODES)


def configuration() -> str:
    """rabbitmq.conf, as the chart's Secret carries it."""
    secret = the(rendered(RABBITMQ).manifests, "Secret", f"{NODES}-config")
    return base64.b64decode(secret["data"]["rabbitmq.conf"]).decode()


def test_the_amqp_url_names_the_charts_service_port_and_user() -> None:
    url = urlsplit(amqp_url())
    service = the(rendered(RABBITMQ).manifests, "Service", str(url.hostname))
    ports = {port["name"]: port["port"] for port in service["spec"]["ports"]}

    assert url.scheme == "amqp"
    assert service["metadata"]["namespace"] == NAMESPACE
    assert ports["amqp"] == url.port
    assert selected(service["spec"]["selector"], pod_template(nodes())["metadata"]["labels"])
    assert env(container(nodes(), "rabbitmq"))["RABBITMQ_USERNAME"] == url.username
    # The default virtual host, `/`.
    assert url.path in {"", "/"}


def test_the_password_and_cookie_come_from_the_secret_the_readme_creates() -> None:
    volumes = {v["name"]: v for v in pod_template(nodes())["spec"]["volumes"]}
    server = container(nodes(), "rabbitmq")
    (mount,) = [m for m in server["volumeMounts"] if m["name"] == "rabbitmq-secrets"]
    secrets = {
        source["secret"]["name"] for source in volumes[mount["name"]]["projected"]["sources"]
    }
    variables = env(server)

    def key_of(variable: str) -> str:
        path = variables[variable]
        assert posixpath.dirname(path) == mount["mountPath"].rstrip("/"), variable
        return posixpath.basename(path)

    (secret,) = secrets
    literals = readme_secret(secret)
    assert literals[key_of("RABBITMQ_PASSWORD_FILE")] == urlsplit(amqp_url()).password
    assert key_of("RABBITMQ_ERL_COOKIE_FILE") in literals


def test_three_nodes_keep_quorum_queues_through_the_loss_of_one() -> None:
    spec = nodes()["spec"]
    budget = the(rendered(RABBITMQ).manifests, "PodDisruptionBudget", NODES)["spec"]
    conf = configuration().splitlines()

    assert spec["replicas"] == 3
    assert spec["podManagementPolicy"] == "Parallel"
    assert budget["maxUnavailable"] == 1
    assert selected(budget["selector"]["matchLabels"], pod_template(nodes())["metadata"]["labels"])
    assert "default_queue_type = quorum" in conf
    assert "cluster_partition_handling = pause_minority" in conf


def test_every_node_keeps_its_messages_on_a_volume() -> None:
    (claim,) = nodes()["spec"]["volumeClaimTemplates"]
    server = container(nodes(), "rabbitmq")
    mounts = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}

    assert claim["spec"]["resources"]["requests"]["storage"] == values_of(
        RABBITMQ, "persistence.size"
    )
    # The node's data directory (queues, messages, cluster metadata) lies on the claim.
    assert env(server)["RABBITMQ_MNESIA_DIR"].startswith(mounts[claim["metadata"]["name"]] + "/")


def test_every_container_gets_the_resources_our_values_set_not_a_preset() -> None:
    spec = pod_template(nodes())["spec"]
    for each in spec.get("initContainers", []) + spec["containers"]:
        assert each["resources"] == values_of(RABBITMQ, "resources"), each["name"]


def test_the_memory_alarm_is_measured_against_the_container_limit() -> None:
    conf = configuration().splitlines()

    assert "total_memory_available_override_value = 1073741824" in conf
    assert values_of(RABBITMQ, "resources.limits.memory") == "1Gi"


def test_the_pinned_legacy_image_is_let_through_with_a_warning() -> None:
    spec = pod_template(nodes())["spec"]
    images = {each["image"] for each in spec.get("initContainers", []) + spec["containers"]}
    pinned = (
        f"docker.io/{values_of(RABBITMQ, 'image.repository')}:{values_of(RABBITMQ, 'image.tag')}"
    )

    # common 2.31.3 fails the install for a bitnamilegacy image without the flag.
    assert values_of(RABBITMQ, "global.security.allowInsecureImages") is True
    assert images == {pinned}
    assert pinned.startswith("docker.io/bitnamilegacy/")
    assert pinned in rendered(RABBITMQ).notes, "the chart warns about the substituted image"


def test_the_nodes_get_a_servicemonitor_only_with_the_monitoring_values() -> None:
    plain = rendered(RABBITMQ).manifests
    monitored = rendered(RABBITMQ, with_monitoring=True).manifests
    monitor = the(monitored, "ServiceMonitor", NODES)["spec"]
    service = the(monitored, "Service", NODES)
    (endpoint,) = monitor["endpoints"]
    ports = {port["name"]: port for port in service["spec"]["ports"]}

    assert find(plain, "ServiceMonitor", NODES) is None
    assert monitor["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert selected(monitor["selector"]["matchLabels"], service["metadata"]["labels"])
    assert endpoint["port"] in ports
    assert ports[endpoint["port"]]["port"] == 9419
