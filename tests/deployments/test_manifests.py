"""What every rendered Kubernetes manifest holds, whichever overlay is applied.

The overlays are rendered by `kubectl kustomize`, as `deployments/check.sh` does (which also
validates each render against the Kubernetes API schemas); these tests check what a schema
cannot: probes, limits, hardening, wiring between objects, and the CLI each container runs.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest

from tests.deployments.manifests import (
    POD_TEMPLATE_PATHS,
    REPO,
    Manifest,
    find,
    pod_template,
    render,
    the,
)

OVERLAYS = (
    "minikube",
    "minikube-async",
    "minikube-publishing",
    "minikube-monitoring",
    "production",
    "ha-cloudnativepg",
)
API = "orders-api"
PROJECTOR = "orders-projector"
DATABASE_SECRET = "orders-database"
# Where each overlay's workloads read DATABASE_URL: the documented Secret, or the one the
# CloudNativePG operator generates for the database's owner (its `uri`).
DATABASE_URL_FROM = {"ha-cloudnativepg": {"name": "orders-db-app", "key": "uri"}}
# `kubectl apply -k <overlay> -l 'app.kubernetes.io/component in (config,migrate)'` applies
# the migrate Job ahead of the rollout (deployments/README.md).
MIGRATE_FIRST = {"config", "migrate"}


@pytest.fixture(params=OVERLAYS)
def manifests(request: pytest.FixtureRequest) -> tuple[Manifest, ...]:
    overlay: str = request.param
    return render(overlay)


def workloads(manifests: tuple[Manifest, ...]) -> Iterator[tuple[str, Manifest]]:
    """(kind/name, pod spec) of every object that runs pods."""
    for doc in manifests:
        if doc["kind"] in POD_TEMPLATE_PATHS:
            yield f"{doc['kind']}/{doc['metadata']['name']}", pod_template(doc)["spec"]


def containers(manifests: tuple[Manifest, ...]) -> Iterator[tuple[str, Manifest, Manifest]]:
    """(kind/name/container, container, pod spec) of every container, init ones included."""
    for where, spec in workloads(manifests):
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield f"{where}/{container['name']}", container, spec


def api_container(manifests: tuple[Manifest, ...]) -> Manifest:
    container: Manifest = pod_template(the(manifests, "Deployment", API))["spec"]["containers"][0]
    return container


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("the orders parser has no subcommands")


def dockerfile_user() -> tuple[int, int]:
    """The numeric `USER uid:gid` of the Dockerfile's last stage."""
    users = re.findall(r"^USER\s+(\d+):(\d+)\s*$", (REPO / "Dockerfile").read_text(), re.M)
    assert users, "the Dockerfile sets no numeric USER uid:gid"
    uid, gid = users[-1]
    return int(uid), int(gid)


def test_api_is_ready_with_the_database_and_alive_without_it(
    manifests: tuple[Manifest, ...],
) -> None:
    container = api_container(manifests)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}

    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert container["startupProbe"]["httpGet"]["port"] == "http"
    assert ports["http"] == 8000


def test_api_rolls_out_and_stops_without_dropping_requests(
    manifests: tuple[Manifest, ...],
) -> None:
    deployment = the(manifests, "Deployment", API)
    pod = pod_template(deployment)["spec"]
    pause = api_container(manifests)["lifecycle"]["preStop"]["sleep"]["seconds"]

    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert 0 < pause < pod["terminationGracePeriodSeconds"]


def test_every_container_requests_and_limits_cpu_and_memory(
    manifests: tuple[Manifest, ...],
) -> None:
    unbounded = [
        f"{where} {bound}"
        for where, container, _ in containers(manifests)
        for bound in ("requests", "limits")
        if not {"cpu", "memory"} <= set(container.get("resources", {}).get(bound, {}))
    ]
    assert unbounded == []


def test_every_pod_runs_as_the_image_user_under_the_runtime_default_seccomp_profile(
    manifests: tuple[Manifest, ...],
) -> None:
    uid, gid = dockerfile_user()
    for where, spec in workloads(manifests):
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, where
        assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (
            uid,
            gid,
            gid,
        ), where
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where


def test_every_container_is_read_only_unprivileged_and_without_capabilities(
    manifests: tuple[Manifest, ...],
) -> None:
    for where, container, _ in containers(manifests):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, where
        assert context["allowPrivilegeEscalation"] is False, where
        assert context["capabilities"]["drop"] == ["ALL"], where
        assert "add" not in context["capabilities"], where


def test_every_container_gets_a_writable_tmp_from_an_empty_dir(
    manifests: tuple[Manifest, ...],
) -> None:
    for where, container, spec in containers(manifests):
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        tmp = [m["name"] for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        assert len(tmp) == 1, where
        assert "emptyDir" in volumes[tmp[0]], where


def test_every_container_runs_a_command_the_orders_cli_accepts(
    manifests: tuple[Manifest, ...],
) -> None:
    from orders.cli import build_parser

    parser = build_parser()
    known = subcommands(parser)
    for where, container, _ in containers(manifests):
        assert container["command"] == ["orders"], where
        args = container["args"]
        assert args[0] in known, f"{where} runs `orders {args[0]}`; the CLI has {sorted(known)}"
        try:
            parser.parse_args(args)
        except SystemExit:
            pytest.fail(f"{where}: `orders {' '.join(args)}` is rejected by the CLI")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_reads_the_database_url_from_the_documented_secret(overlay: str) -> None:
    documented = {"name": DATABASE_SECRET, "key": "DATABASE_URL"}
    expected = {"secretKeyRef": DATABASE_URL_FROM.get(overlay, documented)}
    for where, container, _ in containers(render(overlay)):
        env = {var["name"]: var.get("valueFrom") for var in container.get("env", [])}
        assert env.get("DATABASE_URL") == expected, where


def test_every_container_reads_the_shipped_config_map(manifests: tuple[Manifest, ...]) -> None:
    config_maps = {doc["metadata"]["name"] for doc in manifests if doc["kind"] == "ConfigMap"}
    for where, container, _ in containers(manifests):
        sources = {source["configMapRef"]["name"] for source in container["envFrom"]}
        assert sources and sources <= config_maps, where


def test_ingress_sends_arch_homework_orders_api_to_the_api_pods(
    manifests: tuple[Manifest, ...],
) -> None:
    ingress = the(manifests, "Ingress", "orders")["spec"]
    (rule,) = ingress["rules"]
    (path,) = rule["http"]["paths"]
    backend = path["backend"]["service"]
    service = the(manifests, "Service", backend["name"])["spec"]
    (port,) = [port for port in service["ports"] if port["name"] == backend["port"]["name"]]
    pod_labels = pod_template(the(manifests, "Deployment", API))["metadata"]["labels"]

    assert ingress["ingressClassName"] == "nginx"
    assert rule["host"] == "arch.homework"
    assert (path["path"], path["pathType"]) == ("/api/v1/orders", "Prefix")
    assert service["type"] == "ClusterIP"
    assert (port["port"], port["targetPort"]) == (80, "http")
    assert service["selector"].items() <= pod_labels.items()


def test_disruption_budget_and_autoscaler_govern_only_the_api(
    manifests: tuple[Manifest, ...],
) -> None:
    budget = the(manifests, "PodDisruptionBudget", API)["spec"]
    autoscaler = the(manifests, "HorizontalPodAutoscaler", API)["spec"]
    selector = budget["selector"]["matchLabels"].items()
    covered = {
        doc["metadata"]["name"]
        for doc in manifests
        if doc["kind"] in POD_TEMPLATE_PATHS
        and selector <= pod_template(doc)["metadata"]["labels"].items()
    }

    assert covered == {API}
    assert autoscaler["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": API,
    }
    assert autoscaler["minReplicas"] >= 2


def test_applying_an_overlay_migrates_but_never_starts_a_rebuild(
    manifests: tuple[Manifest, ...],
) -> None:
    migrate = pod_template(the(manifests, "Job", "orders-migrate"))["spec"]["containers"][0]
    rebuild = the(manifests, "CronJob", "orders-rebuild")

    assert migrate["args"] == ["migrate"]
    assert rebuild["spec"]["suspend"] is True
    assert [doc["metadata"]["name"] for doc in manifests if doc["kind"] == "Job"] == [
        "orders-migrate"
    ]


def test_the_migration_can_be_applied_first_with_everything_it_reads(
    manifests: tuple[Manifest, ...],
) -> None:
    selected = {
        (doc["kind"], doc["metadata"]["name"])
        for doc in manifests
        if doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") in MIGRATE_FIRST
    }
    shipped = {(doc["kind"], doc["metadata"]["name"]) for doc in manifests}
    (container,) = pod_template(the(manifests, "Job", "orders-migrate"))["spec"]["containers"]
    reads = {("ConfigMap", source["configMapRef"]["name"]) for source in container["envFrom"]}
    reads |= {
        ("Secret", var["valueFrom"]["secretKeyRef"]["name"])
        for var in container["env"]
        if "secretKeyRef" in var.get("valueFrom", {})
    }

    assert ("Job", "orders-migrate") in selected
    assert reads & shipped <= selected
    assert not {kind for kind, _ in selected} & {"Deployment", "CronJob"}


def test_the_projector_runs_exactly_when_projection_is_async(
    manifests: tuple[Manifest, ...],
) -> None:
    (config,) = [
        doc
        for doc in manifests
        if doc["kind"] == "ConfigMap"
        and doc["metadata"]["labels"]["app.kubernetes.io/component"] == "config"
    ]
    mode = config["data"]["ORDERS_PROJECTION_MODE"]
    projector = find(manifests, "Deployment", PROJECTOR)

    assert mode in {"inline", "async"}
    assert (projector is not None) == (mode == "async")


def test_the_async_overlay_switches_to_async_projection() -> None:
    assert find(render("minikube-async"), "Deployment", PROJECTOR) is not None


def test_production_ships_no_secret() -> None:
    assert [
        doc["metadata"]["name"] for doc in render("production") if doc["kind"] == "Secret"
    ] == []


def test_the_minikube_secret_holds_an_obviously_fake_password() -> None:
    secret = the(render("minikube"), "Secret", DATABASE_SECRET)

    assert "change-me-not-a-real-password" in secret["stringData"]["DATABASE_URL"]
