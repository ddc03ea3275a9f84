"""Health, the OpenAPI document, metrics, and problem details for every kind of error."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.helpers import ORDERS, assert_problem, new_key, order_body, post_order


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", f"{ORDERS}/health"])
async def test_health_endpoints_answer_ok(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.json()["status"] in {"ok", "ready"}


async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


ROUTES = {
    ("post", ORDERS),
    ("post", f"{ORDERS}/create"),
    ("get", ORDERS),
    ("get", f"{ORDERS}/{{order_id}}"),
    ("get", f"{ORDERS}/count"),
    ("get", f"{ORDERS}/health"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
}


async def test_the_openapi_document_lists_every_route(client: httpx.AsyncClient) -> None:
    paths = (await openapi(client))["paths"]
    documented = {(method, path) for path, item in paths.items() for method in item}
    assert documented >= ROUTES


@pytest.mark.parametrize("path", [ORDERS, f"{ORDERS}/create"])
async def test_the_openapi_document_describes_the_create_headers_and_body(
    client: httpx.AsyncClient, path: str
) -> None:
    document = await openapi(client)
    operation = document["paths"][path]["post"]

    headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
    assert set(headers) >= {"Idempotency-Key", "X-Request-Id"}
    assert all(h["description"] for h in headers.values())
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    request_schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert set(request_schema["required"]) == {"products", "shipping_to"}
    assert request_schema.get("additionalProperties") is False
    assert {"201", "400", "409", "413", "415", "422", "503"} <= set(operation["responses"])
    created_headers = operation["responses"]["201"].get("headers", {})
    assert {"Location", "Idempotent-Replayed"} <= set(created_headers)


# 401 belongs to the order operations in every mode's document (it is answered only with
# ORDERS_AUTH jwt or gateway); health stays open.
DOCUMENTED_ERRORS = {
    ("post", ORDERS): {"400", "401", "409", "413", "415", "422", "503"},
    ("post", f"{ORDERS}/create"): {"400", "401", "409", "413", "415", "422", "503"},
    ("get", ORDERS): {"400", "401", "503"},
    ("get", f"{ORDERS}/{{order_id}}"): {"400", "401", "404", "503"},
    ("get", f"{ORDERS}/count"): {"400", "401", "503"},
    ("get", f"{ORDERS}/health"): {"503"},
    ("get", "/health/ready"): {"503"},
    ("get", "/health/live"): set(),
}


async def test_the_openapi_document_describes_every_error_as_a_problem(
    client: httpx.AsyncClient,
) -> None:
    document = await openapi(client)
    problem_schema = document["components"]["schemas"]["Problem"]
    assert set(problem_schema["required"]) >= {"type", "title", "status", "detail"}
    for (method, path), expected in DOCUMENTED_ERRORS.items():
        responses = document["paths"][path][method]["responses"]
        assert {code for code in responses if code[0] in "45"} == expected, (method, path)
        for code in expected:
            assert set(responses[code]["content"]) == {"application/problem+json"}
            assert responses[code]["content"]["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }


async def test_metrics_count_orders_and_requests_by_route_template(
    client: httpx.AsyncClient,
) -> None:
    created = await post_order(client, order_body(), key := new_key())
    await post_order(client, order_body(), key)
    await post_order(client, order_body(products=[]), new_key())
    await post_order(client, order_body(shipping_to="elsewhere"), key)
    await client.get(created.headers["Location"])

    response = await client.get("/metrics")

    assert response.status_code == 200
    text = response.text
    for counter in (
        "orders_created_total",
        "orders_replays_total",
        "orders_rejected_total",
        "orders_key_reuse_conflicts_total",
    ):
        assert re.search(rf"^{counter} [1-9]", text, re.MULTILINE), counter
    requests = re.findall(r"^orders_http_requests_total\{(.*)\} ", text, re.MULTILINE)
    paths = {m.group(1) for labels in requests if (m := re.search(r'path="([^"]*)"', labels))}
    assert f"{ORDERS}/{{order_id:str}}" in paths or f"{ORDERS}/{{order_id}}" in paths
    assert not any(created.json()["order_id"] in p for p in paths), "paths must be templates"
    assert re.search(r"^orders_http_request_duration_seconds_bucket\{", text, re.MULTILINE)


def requests_in(text: str, series: str) -> float:
    """The value of one counter series in a /metrics text; 0 when it is not there yet."""
    found = re.findall(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(found[0]) if found else 0.0


def gauge(text: str, name: str) -> float:
    (value,) = re.findall(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(value)


async def test_metrics_show_how_many_pool_connections_serve_requests(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """A create that waits on an uncommitted first event with its key holds one connection."""
    holder = await asyncpg.connect(database_url)
    key = new_key()
    try:
        idle = (await client.get("/metrics")).text
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute(
            "INSERT INTO events (stream_id, version, event_type, data) "
            "VALUES ($1, 1, 'Happened', '{}')",
            key,
        )
        waiting = asyncio.create_task(post_order(client, order_body(), key))
        async with asyncio.timeout(10):
            # The condition lives in the database, so there is no in-process event to await.
            while not await holder.fetchval(  # noqa: ASYNC110
                "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND pid <> pg_backend_pid()"
            ):
                await asyncio.sleep(0.01)
        busy = (await client.get("/metrics")).text
        await transaction.rollback()
        created = await waiting
    finally:
        await holder.close()

    assert created.status_code == 201
    assert gauge(idle, "orders_db_pool_connections_in_use") == 0
    assert gauge(busy, "orders_db_pool_connections_in_use") == 1
    assert gauge(busy, "orders_db_pool_connections_max") == 4


ERRORS = [
    ("GET", "/no/such/route", 404, "not-found"),
    ("DELETE", ORDERS, 405, "method-not-allowed"),
    ("PUT", f"{ORDERS}/count", 405, "method-not-allowed"),
    ("GET", f"{ORDERS}?limit=0", 400, "invalid-parameter"),
]


@pytest.mark.parametrize(("method", "path", "status", "slug"), ERRORS)
async def test_routing_errors_are_problems(
    client: httpx.AsyncClient, method: str, path: str, status: int, slug: str
) -> None:
    assert_problem(await client.request(method, path), status, slug)


async def test_requests_that_match_no_route_are_counted_and_logged_as_unmatched(
    client: httpx.AsyncClient,
) -> None:
    before = (await client.get("/metrics")).text
    for method, path, _, _ in ERRORS[:3]:
        await client.request(method, path)

    after = (await client.get("/metrics")).text

    for method, status in (("GET", 404), ("DELETE", 405), ("PUT", 405)):
        series = (
            f'orders_http_requests_total{{method="{method}",path="unmatched",'
            f'status_code="{status}"}}'
        )
        assert requests_in(after, series) - requests_in(before, series) == 1, series
