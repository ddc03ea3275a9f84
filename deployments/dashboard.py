"""The orders Grafana dashboard, built with Grafana's own grafana-foundation-sdk.

The JSON the monitoring component ships is this module's output; regenerate it after a change:

    python -m deployments.dashboard            # writes the JSON
    python -m deployments.dashboard --check    # fails if the committed JSON is stale

Queries select the ServiceMonitors' jobs and the namespace chosen at the top of the dashboard;
tests/deployments/test_dashboard.py checks that every metric they name is one we export.
"""

from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
)

OUTPUT = Path(__file__).resolve().parent / "kubernetes/components/monitoring/dashboards/orders.json"
UID = "orders-overview"

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
API = 'job="orders-api", namespace="$namespace"'
PROJECTOR = 'job="orders-projector", namespace="$namespace"'
PUBLISHER = 'job="orders-publisher", namespace="$namespace"'
# What clients asked for: without the kubelet's probes, Prometheus's scrapes and requests for
# paths the API does not have (route "unmatched": scanners, typos).
API_REQUESTS = f'{API}, path!~"/health/.+|/api/v1/orders/health|/metrics|unmatched"'
# The alerts' lines (deployments/kubernetes/components/monitoring/prometheusrule.yaml).
CREATE_P99_OBJECTIVE_SECONDS = 0.25
ERROR_RATIO_PAGE = 0.0144
READ_WAIT_SECONDS = 2
PUBLICATION_LAG_ALERT_SECONDS = 30

Panel = timeseries.Panel | stat.Panel


def query(expr: str, legend: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).datasource(DATASOURCE)


def rate(metric: str, selector: str) -> str:
    return f"rate({metric}{{{selector}}}[$__rate_interval])"


def leader_only(metric: str, worker: str, leader: str, by: str = "") -> str:
    """`metric` as the leading worker (selected by `worker`, leading where the gauge `leader`
    is 1) reports it: a standby keeps what it measured last. `by`: labels to keep."""
    joined = ", ".join(["namespace", "pod", *filter(None, [by])])
    grouping = f" by ({by})" if by else ""
    return f"max{grouping} ({metric}{{{worker}}} and on ({joined}) ({leader}{{{worker}}} == 1))"


def projector_lead(metric: str) -> str:
    return leader_only(metric, PROJECTOR, "orders_projection_leader", by="projection")


def publisher_lead(metric: str) -> str:
    return leader_only(metric, PUBLISHER, "orders_publish_leader")


def dashed_line(panel: timeseries.Panel, at: float) -> timeseries.Panel:
    """The panel with a dashed red line across it at `at` (an alert's threshold)."""
    return panel.thresholds(steps((None, "transparent"), (at, "red"))).thresholds_style(
        common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
    )


def steps(*lines: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    """Colours from each line up; the first line is None (from minus infinity)."""
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in lines])
    )


def graph(
    title: str, description: str, unit: str, *queries: prometheus.Dataquery
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(8)
        .height(8)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    for ref, target in zip(string.ascii_uppercase, queries, strict=False):
        panel = panel.with_target(target.ref_id(ref))
    return panel


def single_stat(title: str, description: str, target: prometheus.Dataquery) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(8)
        .height(8)
        .with_target(target.ref_id("A"))
    )


def latency_by_route(quantile: float) -> prometheus.Dataquery:
    buckets = rate("orders_http_request_duration_seconds_bucket", API_REQUESTS)
    return query(
        f"histogram_quantile({quantile}, sum by (le, method, path) ({buckets}))",
        "{{method}} {{path}}",
    )


def requests() -> list[Panel]:
    outcomes = [
        ("orders_created_total", "created"),
        ("orders_replays_total", "replayed"),
        ("orders_rejected_total", "rejected by a rule (422)"),
        ("orders_key_reuse_conflicts_total", "key reused (422)"),
    ]
    in_progress = f'{API}, status_code="409"'
    server_errors = f'{API_REQUESTS}, status_code=~"5.."'
    return [
        graph(
            "Creates by outcome",
            "What became of each create: a new order, a replay of a recorded outcome, a "
            "business rejection, a key reused with another payload, or a retry that found its "
            "first request still in progress.",
            "reqps",
            *(query(f"sum({rate(metric, API)})", legend) for metric, legend in outcomes),
            query(f"sum({rate('orders_http_requests_total', in_progress)})", "in progress (409)"),
        ),
        graph(
            "Answers by status",
            "Client requests (no probes, no scrapes) by HTTP status.",
            "reqps",
            query(
                f"sum by (status_code) ({rate('orders_http_requests_total', API_REQUESTS)})",
                "{{status_code}}",
            ),
        ).stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL)),
        single_stat(
            "Server errors",
            "Share of client requests answered with a 5xx over the last 5 minutes. "
            "OrdersHighErrorRatio pages above 1.44%, when the last hour is over it too.",
            # `or vector(0)`: with no 5xx at all there is no 5xx series, and 0% beats "No data".
            query(
                f"(sum(rate(orders_http_requests_total{{{server_errors}}}[5m])) or vector(0)) / "
                f"sum(rate(orders_http_requests_total{{{API_REQUESTS}}}[5m]))",
                "5xx share",
            ),
        )
        .unit("percentunit")
        .decimals(2)
        .thresholds(steps((None, "green"), (0.001, "yellow"), (ERROR_RATIO_PAGE, "red"))),
    ]


def lifecycle() -> list[Panel]:
    return [
        graph(
            "Lifecycle commands by outcome",
            "Pay, ship, deliver and cancel: applied, replayed (a retry of a recorded command), "
            "or refused: invalid_transition (409), precondition_failed (412), amount_mismatch "
            "and key_reused (422), forbidden (403), not_found (404).",
            "reqps",
            query(
                f"sum by (action, outcome) ({rate('orders_commands_total', API)})",
                "{{action}} {{outcome}}",
            ),
        ).span(24),
    ]


def latency() -> list[Panel]:
    return [
        graph("p50 by route", "Median answer time per route.", "s", latency_by_route(0.5)).span(12),
        dashed_line(
            graph(
                "p99 by route",
                "99th percentile per route. The dashed line is the creates' objective, 250 ms, "
                "which OrdersCreateLatencyHigh watches.",
                "s",
                latency_by_route(0.99),
            ).span(12),
            CREATE_P99_OBJECTIVE_SECONDS,
        ),
    ]


def database_and_projection() -> list[Panel]:
    ready_checks = f'{API}, path="/health/ready"'
    ready_failures = f'{ready_checks}, status_code!~"2.."'
    return [
        graph(
            "Database pool in use",
            "Connections lent out per API pod, as a share of its pool (ORDERS_POOL_SIZE). "
            "At 100% requests queue for a connection.",
            "percentunit",
            query(
                f"sum by (pod) (orders_db_pool_connections_in_use{{{API}}}) / "
                f"sum by (pod) (orders_db_pool_connections_max{{{API}}})",
                "{{pod}}",
            ),
        ).max(1),
        graph(
            "Failed readiness checks",
            "/health/ready answering other than 2xx, per pod: the database is unreachable or "
            "not migrated (OrdersNotReady).",
            "reqps",
            # A healthy pod has no failure series; `or 0 * checks` draws it at zero.
            query(
                f"sum by (pod) ({rate('orders_http_requests_total', ready_failures)}) or "
                f"0 * sum by (pod) ({rate('orders_http_requests_total', ready_checks)})",
                "{{pod}}",
            ),
        ),
        single_stat(
            "Projector leaders",
            "Workers holding the projection's leader lock: 1 in async mode, none in inline "
            "mode (OrdersProjectorWithoutLeader).",
            query(f"sum(orders_projection_leader{{{PROJECTOR}}})", "leaders"),
        ).thresholds(steps((None, "red"), (1, "green"))),
        dashed_line(
            graph(
                "Projection lag",
                "How long the oldest event not yet projected has waited. Strong reads wait up "
                "to ORDERS_READ_WAIT_SECONDS (2 s) for the projector, then answer 503.",
                "s",
                query(projector_lead("orders_projection_lag_seconds"), "{{projection}}"),
            ),
            READ_WAIT_SECONDS,
        ),
        graph(
            "Projection lag in events",
            "Events appended but not yet projected, as the leader last measured.",
            "short",
            query(projector_lead("orders_projection_lag_events"), "{{projection}}"),
        ),
        graph(
            "Events projected",
            "Events the projectors apply to the read model per second.",
            "ops",
            query(
                f"sum by (projection) ({rate('orders_projection_events_total', PROJECTOR)})",
                "{{projection}}",
            ),
        ),
    ]


def publication() -> list[Panel]:
    confirm_buckets = rate("orders_publish_confirm_seconds_bucket", PUBLISHER)
    return [
        graph(
            "Events published",
            "Events the broker confirmed per second, and batches by outcome: a failed batch "
            "(a nack, a return, a timeout, a lost connection) is retried from the checkpoint. "
            "Returned: messages that no queue took, not even orders.unrouted.",
            "ops",
            query(f"sum({rate('orders_publish_events_total', PUBLISHER)})", "events"),
            query(
                f"sum by (outcome) ({rate('orders_publish_batches_total', PUBLISHER)})",
                "batches {{outcome}}",
            ),
            query(f"sum({rate('orders_publish_unroutable_total', PUBLISHER)})", "returned"),
        ),
        dashed_line(
            graph(
                "Publication lag",
                "How long the oldest event the broker has not confirmed has waited, as the "
                "leading publisher measures it. OrdersPublicationLagging warns above 30 s for "
                "5 minutes.",
                "s",
                query(publisher_lead("orders_publish_lag_seconds"), "seconds"),
            ),
            PUBLICATION_LAG_ALERT_SECONDS,
        ),
        graph(
            "Publication lag in events",
            "Events in the store that the broker has not confirmed yet, as the leader measures.",
            "short",
            query(publisher_lead("orders_publish_lag_events"), "events"),
        ),
        graph(
            "Broker confirm latency",
            "From a batch's publish to the broker's last confirm of it, p50 and p99.",
            "s",
            *(
                query(
                    f"histogram_quantile({quantile}, sum by (le) ({confirm_buckets}))",
                    f"p{round(quantile * 100)}",
                )
                for quantile in (0.5, 0.99)
            ),
        ),
        single_stat(
            "Publisher leaders",
            "Workers holding the publication's leader lock: 1 with the publishing component, "
            "none without it (OrdersPublisherWithoutLeader).",
            query(f"sum(orders_publish_leader{{{PUBLISHER}}})", "leaders"),
        ).thresholds(steps((None, "red"), (1, "green"))),
    ]


SECTIONS = {
    "Requests": requests,
    "Order lifecycle": lifecycle,
    "Latency": latency,
    "Database and projection": database_and_projection,
    "Publication": publication,
}


def build() -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard("orders")
        .uid(UID)
        .description(
            "The orders service: requests and outcomes, lifecycle commands, latency, database, "
            "projection, publication."
        )
        .tags(["orders"])
        .refresh("30s")
        .time("now-3h", "now")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(
            dashboard.QueryVariable("namespace")
            .label("Namespace")
            .datasource(DATASOURCE)
            .query('label_values(orders_http_requests_total{job="orders-api"}, namespace)')
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
    )
    ids = iter(range(1, 100))
    for title, panels in SECTIONS.items():
        # Open rows, their panels after them at the top level: all visible at a glance.
        board = board.with_row(dashboard.Row(title).collapsed(False).id(next(ids)))
        for panel in panels():
            board = board.with_panel(panel.id(next(ids)))
    return board


def render() -> str:
    """The dashboard as the JSON file the ConfigMap carries."""
    return JSONEncoder(sort_keys=True, indent=2).encode(build().build()) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the JSON is not current")
    args = parser.parse_args(argv)
    rendered = render()
    if not args.check:
        OUTPUT.write_text(rendered)
        return 0
    if not OUTPUT.exists() or OUTPUT.read_text() != rendered:
        print(f"{OUTPUT} is stale: run `python -m deployments.dashboard`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
