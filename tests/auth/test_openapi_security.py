"""The OpenAPI document declares how callers authenticate, on the order operations and the
event feed only."""

from __future__ import annotations

from typing import Any

import pytest

from orders.api.app import create_app
from orders.settings import Settings
from tests.auth.tokens import jwt_settings

UNUSED_URL = "postgresql://127.0.0.1:1/unused"


def document(settings: Settings) -> dict[str, Any]:
    schema: dict[str, Any] = create_app(settings, UNUSED_URL).openapi_schema.to_schema()
    return schema


def order_operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for path, item in doc["paths"].items()
        if path.startswith(("/api/v1/orders", "/api/v1/events")) and not path.endswith("/health")
        for operation in item.values()
    ]


@pytest.mark.parametrize(
    ("settings", "scheme"),
    [
        (jwt_settings(), {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}),
        (Settings(auth="gateway"), {"type": "apiKey", "in": "header", "name": "X-User-Id"}),
    ],
    ids=["jwt", "gateway"],
)
def test_every_order_operation_requires_the_modes_scheme(
    settings: Settings, scheme: dict[str, str]
) -> None:
    doc = document(settings)
    ((name, declared),) = doc["components"]["securitySchemes"].items()

    assert scheme.items() <= declared.items()
    assert all(op["security"] == [{name: []}] for op in order_operations(doc))
    assert all(op["responses"]["401"] for op in order_operations(doc))
    assert "security" not in doc["paths"]["/health/ready"]["get"]


def test_without_authentication_no_scheme_is_declared() -> None:
    doc = document(Settings())

    assert "securitySchemes" not in doc.get("components", {})
    assert all("security" not in op for op in order_operations(doc))
