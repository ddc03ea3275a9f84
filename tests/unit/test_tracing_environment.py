"""Tracing follows the standard OTEL_* variables: on with an OTLP endpoint, else off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import Tracer

from orders.cli import main
from orders.settings import SettingsError
from orders.tracing import Tracing

OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch


def service_name(tracing: Tracing) -> object:
    assert isinstance(tracing.tracer, Tracer)
    return tracing.tracer.resource.attributes["service.name"]


def test_without_an_endpoint_there_is_no_tracer(environment: pytest.MonkeyPatch) -> None:
    assert Tracing.from_environment().tracer is None


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
)
async def test_an_endpoint_turns_tracing_on_as_the_service_orders(
    environment: pytest.MonkeyPatch, variable: str
) -> None:
    environment.setenv(variable, "http://127.0.0.1:4318")

    tracing = Tracing.from_environment()

    assert service_name(tracing) == "orders"
    await tracing.shutdown()


async def test_the_sdk_reads_the_service_name(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    environment.setenv("OTEL_SERVICE_NAME", "orders-eu")

    tracing = Tracing.from_environment()

    assert service_name(tracing) == "orders-eu"
    await tracing.shutdown()


def test_a_disabled_sdk_wins_over_an_endpoint(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    environment.setenv("OTEL_SDK_DISABLED", "true")

    assert Tracing.from_environment().tracer is None


@pytest.mark.parametrize(
    ("variable", "protocol"),
    [("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")],
)
def test_a_protocol_we_cannot_export_is_refused_at_start(
    environment: pytest.MonkeyPatch, variable: str, protocol: str
) -> None:
    environment.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    environment.setenv(variable, protocol)

    with pytest.raises(SettingsError, match=variable):
        Tracing.from_environment()


async def test_the_traces_protocol_overrides_the_general_one(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces")
    environment.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    environment.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")

    tracing = Tracing.from_environment()

    assert tracing.tracer is not None
    await tracing.shutdown()


def test_the_command_refuses_such_a_protocol_before_it_starts_anything(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    environment.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    environment.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    environment.setenv("ORDERS_DATA_DIR", str(tmp_path))

    assert main(["migrate"]) == 2
    assert "OTEL_EXPORTER_OTLP_PROTOCOL='grpc'" in capsys.readouterr().err
