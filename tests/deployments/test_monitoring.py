"""The monitoring component wires up: each ServiceMonitor finds a Service and a port that
serve /metrics, the jobs the rules and the dashboard select are those Services, and Grafana's
sidecar finds the dashboard. Only the overlay that asks for the component gets it."""

from __future__ import annotations

import json

from deployments import dashboard
from orders.cli import build_parser
from tests.deployments.manifests import Manifest, pod_template, render, selected, the
from tests.deployments.queries import alert_rules, dashboard_queries, label_values, selectors

OVERLAY = "minikube-monitoring"
# kubectl apply (client side) keeps the whole object in an annotation limited to 256 KiB.
LAST_APPLIED_LIMIT = 256 * 1024


def of_kind(kind: str) -> list[Manifest]:
    return [doc for doc in render(OVERLAY) if doc["kind"] == kind]


def scraped_services() -> dict[str, tuple[Manifest, str]]:
    """ServiceMonitor name -> (the one Service it selects, the port name it scrapes)."""
    found = {}
    for monitor in of_kind("ServiceMonitor"):
        spec = monitor["spec"]
        services = [
            service
            for service in of_kind("Service")
            if service["metadata"]["namespace"] == monitor["metadata"]["namespace"]
            and selected(spec["selector"]["matchLabels"], service["metadata"]["labels"])
        ]
        assert len(services) == 1, monitor["metadata"]["name"]
        (endpoint,) = spec["endpoints"]
        assert endpoint["path"] == "/metrics"
        found[monitor["metadata"]["name"]] = (services[0], endpoint["port"])
    return found


def container_port(service: Manifest, port_name: str) -> tuple[Manifest, int]:
    """The container behind a Service's named port, and the port number it listens on."""
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == port_name]
    (workload,) = [
        doc
        for doc in of_kind("Deployment")
        if selected(service["spec"]["selector"], pod_template(doc)["metadata"]["labels"])
    ]
    (container,) = pod_template(workload)["spec"]["containers"]
    numbers = {p["name"]: p["containerPort"] for p in container["ports"]}
    return container, numbers[port["targetPort"]]


def test_the_api_projector_and_publisher_are_scraped_where_they_serve_metrics() -> None:
    scraped = scraped_services()
    api, api_port = container_port(*scraped["orders-api"])
    projector, projector_port = container_port(*scraped["orders-projector"])
    publisher, publisher_port = container_port(*scraped["orders-publisher"])
    serve = build_parser().parse_args(api["args"])
    project = build_parser().parse_args(projector["args"])
    publish = build_parser().parse_args(publisher["args"])

    assert api_port == serve.port
    assert projector_port == project.metrics_port
    assert publisher_port == publish.metrics_port


def test_the_rules_and_dashboard_select_the_jobs_prometheus_gives_the_services() -> None:
    # Without a jobLabel, the Prometheus Operator names each job after the Service.
    jobs = {service["metadata"]["name"] for service, _ in scraped_services().values()}
    exprs = [rule["expr"] for rule in alert_rules()] + dashboard_queries()
    for expr in exprs:
        for selector in selectors(expr):
            assert label_values(selector, "job") <= jobs, expr
            assert label_values(selector, "job"), f"{selector} selects no job"


def test_grafanas_sidecar_finds_the_current_dashboard() -> None:
    config_map = the(render(OVERLAY), "ConfigMap", "orders-dashboard")
    (content,) = config_map["data"].values()

    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert content == dashboard.render(), "stale: run `python -m deployments.dashboard`"
    assert json.loads(content)["uid"] == dashboard.UID
    assert len(content.encode()) < LAST_APPLIED_LIMIT


def test_only_the_overlay_that_asks_for_monitoring_needs_the_operators_crds() -> None:
    for overlay in (
        "minikube",
        "minikube-async",
        "minikube-publishing",
        "production",
        "ha-cloudnativepg",
    ):
        kinds = {doc["apiVersion"] for doc in render(overlay)}
        assert not any(kind.startswith("monitoring.coreos.com/") for kind in kinds), overlay
