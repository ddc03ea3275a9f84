"""Every metric the alert rules and the dashboard query is one the service really exports.

What is exported is read from the code, not from a list kept by hand: the real app, started
in-process over a real database, is scraped on /metrics, with the projector's and the
publisher's modules imported as `orders project` and `orders publish` import them (all three
processes expose prometheus_client's default registry, so the one scrape lists every
family). A labelled metric with no series yet still shows its `# TYPE` line; its series names
follow from the type.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

import httpx
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

import orders.publishing
import projections.worker  # noqa: F401 (registers the projector's metrics, as `orders project`)
from orders.api.app import create_app
from orders.settings import Settings
from tests.api.conftest import running
from tests.deployments.queries import alert_rules, dashboard_queries, selectors
from tests.support.asgi import asgi_transport

# The series names a family of each type is exposed under.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
# Recorded by Prometheus itself for every target it scrapes.
SCRAPE_SERIES = {"up"}


def import_the_publisher() -> None:
    """Every module of orders.publishing, as `orders publish` imports the ones that register
    its metrics (named here by their package, not by a module that may move)."""
    for module in pkgutil.walk_packages(orders.publishing.__path__, "orders.publishing."):
        importlib.import_module(module.name)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def exported(database_url: str) -> set[str]:
    import_the_publisher()
    app = create_app(Settings(pool_size=2), database_url)
    async with (
        running(app),
        httpx.AsyncClient(transport=asgi_transport(app), base_url="http://t") as client,
    ):
        response = await client.get("/metrics")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.text):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def unknown(exprs: Iterable[str], exported: set[str]) -> dict[str, set[str]]:
    """Expression -> the metric names in it that nothing exports."""
    found = {}
    for expr in exprs:
        names = {selector.name for selector in selectors(expr)}
        assert None not in names, f"a selector without a metric name: {expr}"
        if missing := {n for n in names if n is not None and n not in exported | SCRAPE_SERIES}:
            found[expr] = missing
    return found


def test_the_scrape_lists_the_api_projector_and_publisher_metrics(exported: set[str]) -> None:
    assert {
        "orders_http_requests_total",
        "orders_db_pool_connections_in_use",
        "orders_projection_lag_seconds",
        "orders_publish_lag_seconds",
    } <= exported


def test_every_alert_names_only_metrics_we_export(exported: set[str]) -> None:
    assert unknown((rule["expr"] for rule in alert_rules()), exported) == {}


def test_every_dashboard_query_names_only_metrics_we_export(exported: set[str]) -> None:
    assert unknown(dashboard_queries(), exported) == {}
