"""The PromQL that the monitoring component ships, parsed: alert rules and dashboard queries.

Expressions are parsed with promql-parser (a full PromQL grammar), never picked apart with
regular expressions, so a metric hidden in a subquery or a join is found like any other.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import promql_parser
import yaml

from tests.deployments.manifests import KUSTOMIZE_ROOT

MONITORING = KUSTOMIZE_ROOT / "components" / "monitoring"
RULES = MONITORING / "prometheusrule.yaml"
DASHBOARD = MONITORING / "dashboards" / "orders.json"
# Grafana's own variables that stand where PromQL wants a literal.
GRAFANA_RANGES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


@cache
def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        rule
        for group in yaml.safe_load(RULES.read_text())["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    return rules


def dashboard_queries() -> list[str]:
    """Every panel target's PromQL, and the selector inside each `label_values(...)` variable."""
    board = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            (selector,) = re.findall(r"^label_values\((.+), *\w+\)$", variable["query"])
            exprs.append(selector)
    return exprs


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    """Every vector selector in `expr`, in order."""
    for variable, literal in GRAFANA_RANGES.items():
        expr = expr.replace(variable, literal)
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return found


def label_values(selector: promql_parser.VectorSelector, label: str) -> set[str]:
    """The values an equality matcher on `label` pins in `selector`."""
    return {
        matcher.value
        for matcher in selector.matchers.matchers
        if matcher.name == label and matcher.op == promql_parser.MatchOp.Equal
    }
