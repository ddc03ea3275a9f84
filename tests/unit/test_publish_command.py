"""`orders publish`'s configuration and its HTTP port, without a broker: the settings it reads,
its refusal to start without ORDERS_AMQP_URL, and /healthz following the loop's heartbeat."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from orders.cli import main
from orders.publishing import health
from orders.settings import SettingsError, load_settings
from tests.processes.services import free_port


def test_the_publisher_settings_have_defaults_and_read_the_environment() -> None:
    assert load_settings({}).amqp_exchange == "orders"
    assert load_settings({}).events_source == "/orders"
    settings = load_settings(
        {
            "ORDERS_AMQP_URL": "amqp://u:p@rabbit:5672/v",
            "ORDERS_AMQP_EXCHANGE": "shop",
            "ORDERS_AMQP_CONFIRM_TIMEOUT_SECONDS": "2.5",
            "ORDERS_EVENTS_SOURCE": "/eu/orders",
        }
    )
    assert (settings.amqp_url, settings.amqp_exchange) == ("amqp://u:p@rabbit:5672/v", "shop")
    assert (settings.amqp_confirm_timeout_seconds, settings.events_source) == (2.5, "/eu/orders")


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_confirm_timeout_that_is_not_a_positive_number_fails_the_start(value: str) -> None:
    with pytest.raises(SettingsError, match="ORDERS_AMQP_CONFIRM_TIMEOUT_SECONDS"):
        load_settings({"ORDERS_AMQP_CONFIRM_TIMEOUT_SECONDS": value})


def test_publish_without_a_broker_url_says_so_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ORDERS_AMQP_URL", raising=False)
    assert main(["publish"]) == 2
    assert "ORDERS_AMQP_URL" in capsys.readouterr().err


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            code: int = answer.status
            return code
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize(("within", "expected"), [(60.0, 200), (-1.0, 503)])
def test_healthz_follows_the_heartbeat_and_metrics_are_served(within: float, expected: int) -> None:
    port = free_port()
    server = health.serve(port, health.Heartbeat(within=within), host="127.0.0.1")
    try:
        assert status(f"http://127.0.0.1:{port}/healthz") == expected
        assert status(f"http://127.0.0.1:{port}/metrics") == 200
        assert status(f"http://127.0.0.1:{port}/other") == 404
    finally:
        server.shutdown()
        server.server_close()
