"""The publishing component: `orders publish` as two workers of which one leads, kept running
through rollouts and drains, probed on its metrics port, with the broker's URL from its own
Secret; and the network around it: the publisher reaches PostgreSQL and RabbitMQ and nothing
else, and RabbitMQ takes connections from the publisher and from consumers, not from anyone.

The peers are the Bitnami charts' pods as rendered with our values (tests/deployments/charts.py),
so a renamed release or a changed label in either breaks these tests, not the cluster."""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit

import pytest

from deployments.charts import NAMESPACE, POSTGRESQL, RABBITMQ
from orders.cli import build_parser
from tests.deployments.charts import rendered, secret_value
from tests.deployments.manifests import (
    POD_TEMPLATE_PATHS,
    Manifest,
    find,
    pod_template,
    render,
    selected,
    the,
)
from tests.deployments.network import Pod, connects

PUBLISHER = "orders-publisher"
AMQP_SECRET = "orders-amqp"
WITH_PUBLISHER = ("minikube-publishing", "minikube-monitoring")
WITHOUT_PUBLISHER = ("minikube", "minikube-async", "production")
MANAGEMENT, BROKER_METRICS = 15672, 9419


@pytest.fixture(params=WITH_PUBLISHER)
def manifests(request: pytest.FixtureRequest) -> tuple[Manifest, ...]:
    overlay: str = request.param
    return render(overlay)


def publisher_container(manifests: tuple[Manifest, ...]) -> Manifest:
    (container,) = pod_template(the(manifests, "Deployment", PUBLISHER))["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def parsed(args: list[str]) -> argparse.Namespace:
    """The publisher's command line as `orders` parses it."""
    try:
        return build_parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"`orders {' '.join(args)}` is rejected by the CLI")


def pod_of(workload: Manifest) -> Pod:
    template = pod_template(workload)
    ports = {
        port["name"]: port["containerPort"]
        for container in template["spec"]["containers"]
        for port in container.get("ports", [])
        if "name" in port
    }
    return Pod(
        workload["metadata"].get("namespace", NAMESPACE), template["metadata"]["labels"], ports
    )


def policies() -> list[Manifest]:
    """Every NetworkPolicy in the namespace once the overlay and both charts are applied."""
    found = [doc for doc in render("minikube-publishing") if doc["kind"] == "NetworkPolicy"]
    for chart in (POSTGRESQL, RABBITMQ):
        found += [doc for doc in rendered(chart).manifests if doc["kind"] == "NetworkPolicy"]
    return found


def url_port(secret: str, key: str) -> int:
    """The port inside a URL that an overlay's Secret gives the service."""
    port = urlsplit(secret_value(render("minikube-publishing"), secret, key)).port
    assert port is not None, (secret, key)
    return port


def amqp_port() -> int:
    return url_port(AMQP_SECRET, "ORDERS_AMQP_URL")


def postgres_port() -> int:
    return url_port("orders-database", "DATABASE_URL")


def publisher() -> Pod:
    return pod_of(the(render("minikube-publishing"), "Deployment", PUBLISHER))


def api() -> Pod:
    return pod_of(the(render("minikube-publishing"), "Deployment", "orders-api"))


def broker() -> Pod:
    return pod_of(the(rendered(RABBITMQ).manifests, "StatefulSet", "orders-broker-rabbitmq"))


def database() -> Pod:
    return pod_of(the(rendered(POSTGRESQL).manifests, "StatefulSet", "orders-db-postgresql"))


DNS = Pod("kube-system", {"k8s-app": "kube-dns"})
CLIENT_LABEL = {"orders-broker-rabbitmq-client": "true"}


def test_two_publishers_run_one_at_least_through_rollouts_and_drains(
    manifests: tuple[Manifest, ...],
) -> None:
    deployment = the(manifests, "Deployment", PUBLISHER)
    budget = the(manifests, "PodDisruptionBudget", PUBLISHER)["spec"]
    covered = {
        doc["metadata"]["name"]
        for doc in manifests
        if doc["kind"] in POD_TEMPLATE_PATHS
        and selected(budget["selector"]["matchLabels"], pod_template(doc)["metadata"]["labels"])
    }

    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert covered == {PUBLISHER}
    assert budget["minAvailable"] == 1


def test_the_publisher_is_probed_on_healthz_of_its_metrics_port(
    manifests: tuple[Manifest, ...],
) -> None:
    container = publisher_container(manifests)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    publish = parsed(container["args"])

    assert container["args"][0] == "publish"
    assert ports["metrics"] == publish.metrics_port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}, probe
    # /healthz fails after 60 s without a cycle; liveness gives it more before a restart.
    live = container["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= 30


def test_the_publisher_reads_the_broker_url_from_its_secret(
    manifests: tuple[Manifest, ...],
) -> None:
    env = {var["name"]: var.get("valueFrom") for var in publisher_container(manifests)["env"]}

    assert env["ORDERS_AMQP_URL"] == {
        "secretKeyRef": {"name": AMQP_SECRET, "key": "ORDERS_AMQP_URL"}
    }


def test_the_minikube_broker_secret_holds_an_obviously_fake_password() -> None:
    secret = the(render("minikube-publishing"), "Secret", AMQP_SECRET)

    assert "change-me-not-a-real-broker-password" in secret["stringData"]["ORDERS_AMQP_URL"]


@pytest.mark.parametrize("overlay", WITHOUT_PUBLISHER)
def test_only_the_publishing_overlays_run_a_publisher_or_need_a_broker(overlay: str) -> None:
    manifests = render(overlay)

    assert find(manifests, "Deployment", PUBLISHER) is None
    assert find(manifests, "Secret", AMQP_SECRET) is None


def test_the_publisher_reaches_postgresql_and_rabbitmq_and_nothing_else() -> None:
    found = policies()

    assert connects(found, publisher(), database(), postgres_port())
    assert connects(found, publisher(), broker(), amqp_port())
    assert connects(found, publisher(), DNS, 53, "UDP")
    assert not connects(found, publisher(), broker(), MANAGEMENT)
    assert not connects(found, publisher(), api(), api().ports["http"])
    assert not connects(found, publisher(), DNS, postgres_port())


def test_only_the_metrics_port_of_the_publisher_is_open() -> None:
    prometheus = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
    found = policies()

    assert connects(found, prometheus, publisher(), publisher().ports["metrics"])
    assert not connects(found, prometheus, publisher(), 8000)


def test_rabbitmq_takes_amqp_from_the_publisher_and_labelled_consumers_only() -> None:
    found = policies()
    consumer_here = Pod(NAMESPACE, {"app": "payments", **CLIENT_LABEL})
    consumer_elsewhere = Pod(
        "payments",
        {"app": "payments", **CLIENT_LABEL},
        namespace_labels={"orders-broker-clients": "true"},
    )
    unlabelled_namespace = Pod("stock", {"app": "stock", **CLIENT_LABEL})
    prometheus = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})

    assert connects(found, publisher(), broker(), amqp_port())
    assert connects(found, consumer_here, broker(), amqp_port())
    assert connects(found, consumer_elsewhere, broker(), amqp_port())
    assert not connects(found, api(), broker(), amqp_port())
    assert not connects(found, unlabelled_namespace, broker(), amqp_port())
    assert connects(found, prometheus, broker(), BROKER_METRICS)
    assert not connects(found, prometheus, broker(), amqp_port())
