"""deployments/schemas.py, the validator check.sh runs on every render, refuses what the API
server would: an unknown field in a custom resource, a repeated key in a map-list, a kind it
has no schema for. Each case starts from an object it accepts."""

from __future__ import annotations

import copy

from deployments.schemas import problems
from tests.deployments.manifests import Manifest, the
from tests.deployments.manifests import render as render_overlay

KUBERNETES = "1.30.0"


def rendered(kind: str, name: str) -> Manifest:
    return copy.deepcopy(the(render_overlay("minikube-monitoring"), kind, name))


def test_the_shipped_custom_resources_are_valid() -> None:
    for kind, name in [
        ("ServiceMonitor", "orders-api"),
        ("ServiceMonitor", "orders-projector"),
        ("ServiceMonitor", "orders-publisher"),
        ("PrometheusRule", "orders"),
    ]:
        assert problems(rendered(kind, name), KUBERNETES) == [], (kind, name)


def test_a_misspelt_field_in_a_servicemonitor_is_refused() -> None:
    monitor = rendered("ServiceMonitor", "orders-api")
    monitor["spec"]["endpoints"][0]["interval_seconds"] = 15

    assert any("interval_seconds" in p for p in problems(monitor, KUBERNETES))


def test_a_wrong_type_in_a_rule_is_refused() -> None:
    rule = rendered("PrometheusRule", "orders")
    rule["spec"]["groups"][0]["rules"][0]["for"] = "two minutes"

    assert any("two minutes" in p for p in problems(rule, KUBERNETES))


def test_two_rule_groups_with_one_name_are_refused() -> None:
    rule = rendered("PrometheusRule", "orders")
    rule["spec"]["groups"].append(copy.deepcopy(rule["spec"]["groups"][0]))

    assert any("repeated map-list entry" in p for p in problems(rule, KUBERNETES))


def test_metadata_of_a_custom_resource_is_checked_like_any_objects() -> None:
    monitor = rendered("ServiceMonitor", "orders-api")
    monitor["metadata"]["label"] = {"app": "orders"}

    assert any("label" in p for p in problems(monitor, KUBERNETES))


def test_a_kind_without_a_schema_is_refused_not_skipped() -> None:
    probe = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Probe", "metadata": {"name": "x"}}

    assert problems(probe, KUBERNETES) != []
