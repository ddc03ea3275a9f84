"""overlays/ha-cloudnativepg: production on a CloudNativePG `Cluster` whose commits wait for a
standby, with every workload on the operator's -rw Service; and the validator holds the
`Cluster` to the operator's own CRD schema."""

from __future__ import annotations

import copy

from deployments.schemas import problems
from tests.deployments.manifests import Manifest, pod_template, render, the

OVERLAY = "ha-cloudnativepg"
CLUSTER = "orders-db"
KUBERNETES = "1.30.0"


def cluster() -> Manifest:
    return copy.deepcopy(the(render(OVERLAY), "Cluster", CLUSTER))


def test_the_cluster_is_valid_against_the_operators_crd() -> None:
    assert problems(cluster(), KUBERNETES) == []


def test_a_misspelt_field_in_the_cluster_is_refused() -> None:
    misspelt = cluster()
    misspelt["spec"]["postgresql"]["synchronous"]["dataDurabilty"] = "required"

    assert any("dataDurabilty" in p for p in problems(misspelt, KUBERNETES))


def test_three_instances_whose_commits_wait_for_a_standby_that_a_failover_keeps() -> None:
    spec = cluster()["spec"]
    synchronous = spec["postgresql"]["synchronous"]

    assert spec["instances"] == 3
    assert synchronous["number"] >= 1
    assert synchronous["dataDurability"] == "required"
    assert synchronous["failoverQuorum"] is True
    assert spec["affinity"]["podAntiAffinityType"] == "required"


def test_every_workload_connects_with_the_operators_uri_for_the_rw_service() -> None:
    manifests = render(OVERLAY)
    workloads = [d for d in manifests if d["kind"] in ("Deployment", "Job", "CronJob")]
    assert workloads
    for workload in workloads:
        for container in pod_template(workload)["spec"]["containers"]:
            env = {var["name"]: var.get("valueFrom") for var in container.get("env", [])}
            # The -app Secret's `uri` names <cluster>-rw, the Service on the current primary.
            assert env["DATABASE_URL"] == {
                "secretKeyRef": {"name": f"{CLUSTER}-app", "key": "uri"}
            }, workload["metadata"]["name"]


def test_the_replication_barrier_is_left_on() -> None:
    for doc in render(OVERLAY):
        if doc["kind"] == "ConfigMap":
            assert doc.get("data", {}).get("ORDERS_REPLICATION_BARRIER", "auto") != "off"
